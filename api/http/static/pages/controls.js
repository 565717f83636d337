// What the pages share: the month range form, loading an answer into a part of the page, and
// the cards of headline figures.

import { h } from "../dom.js";

/** A form with the months `from` and `to` (and any `extra` fields); on submit, the view's
 * address takes the new values. */
export function monthRange(ctx, from, to, extra = []) {
  const form = h(
    "form",
    { class: "controls", id: "range" },
    h("label", {}, "From ", h("input", { type: "month", name: "from", value: from, required: true })),
    h("label", {}, "To ", h("input", { type: "month", name: "to", value: to, required: true })),
    ...extra,
    h("button", { type: "submit" }, "Show"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form).entries());
    ctx.go(values);
  });
  return form;
}

/** Runs `work`; a refusal shows in the banner and, in `area`, as a note; the answer, or null. */
export async function attempt(ctx, area, work) {
  try {
    return await work();
  } catch (error) {
    if (ctx.current()) area.replaceChildren(ctx.fail(error));
    return null;
  }
}

/** Headline figures: [{label, value, hint, cls, field}]. */
export function figures(items) {
  return h(
    "div",
    { class: "figures" },
    items.map((item) =>
      h(
        "div",
        { class: `figure ${item.cls || ""}`, dataset: item.field ? { figure: item.field } : null },
        h("div", { class: "figure-label" }, item.label),
        h("div", { class: "figure-value" }, item.value),
        item.hint ? h("div", { class: "figure-hint" }, item.hint) : null,
      ),
    ),
  );
}

/** "positive", "negative" or "" for colouring a signed amount. */
export function sign(value) {
  if (value > 0) return "positive";
  if (value < 0) return "negative";
  return "";
}
