// Building the page from data: elements are made with text nodes only, never parsed HTML, so
// nothing the API answers (names, error messages) can become markup.

const SVG = "http://www.w3.org/2000/svg";

function fill(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.setAttribute("class", value);
    else if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element: h("td", {class: "num"}, "1,234.00"). */
export function h(tag, attributes, ...children) {
  return fill(document.createElement(tag), attributes, children);
}

/** An SVG element, in the SVG namespace. */
export function s(tag, attributes, ...children) {
  return fill(document.createElementNS(SVG, tag), attributes, children);
}

/** A table: `columns` are {label, cell(row) -> text or node, num, key, cls}; `rows` the data. */
export function table(columns, rows, options = {}) {
  const head = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null }, c.label))));
  const body = h(
    "tbody",
    {},
    rows.map((row) =>
      h(
        "tr",
        options.rowAttributes ? options.rowAttributes(row) : {},
        columns.map((c) => h("td", { class: [c.num ? "num" : "", c.cls || ""].join(" ").trim() || null, dataset: c.key ? { field: c.key } : null }, c.cell(row))),
      ),
    ),
  );
  const parts = [head, body];
  if (options.footer) parts.push(h("tfoot", {}, options.footer));
  return h("div", { class: "table-wrap" }, h("table", { class: options.class || "data", id: options.id || null }, ...parts));
}

/** A titled block of the page. */
export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...children);
}

/** A note in place of data: nothing to show, or why not. */
export function note(text, kind = "info") {
  return h("p", { class: `note ${kind}` }, text);
}
