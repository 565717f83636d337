// Revenue: what was billed, credited and recognized each month, the deferred balance left at
// each month's end, and the waterfall of each billing month's revenue by the month earned.

import { read } from "../api.js";
import { chart, legend } from "../charts.js";
import { card, h, note, table } from "../dom.js";
import { addMonths, amount, major, money, monthLabel, shortMonth, thisMonth } from "../format.js";
import { attempt, figures, monthRange } from "./controls.js";

function summaryChart(months, currency) {
  const series = (key, name) => ({
    name,
    values: months.map((m) => major(m[key], currency)),
    titles: months.map((m) => `${monthLabel(m.month)}: ${name.toLowerCase()} ${money(m[key], currency)}`),
  });
  return chart({
    label: `Billed, recognized and deferred revenue by month in ${currency}`,
    labels: months.map((m) => shortMonth(m.month)),
    bars: [
      { ...series("billed", "Billed"), cls: "s-billed" },
      { ...series("recognized", "Recognized"), cls: "s-recognized" },
    ],
    lines: [{ ...series("deferred_end", "Deferred at month end"), cls: "s-deferred", area: true }],
  });
}

function summaryTable(months, currency) {
  const total = (key) => months.reduce((sum, m) => sum + m[key], 0);
  return table(
    [
      { label: "Month", cell: (m) => monthLabel(m.month) },
      { label: "Billed", num: true, key: "billed", cell: (m) => amount(m.billed, currency) },
      { label: "Credited", num: true, key: "credited", cell: (m) => amount(m.credited, currency) },
      { label: "Recognized", num: true, key: "recognized", cell: (m) => amount(m.recognized, currency) },
      { label: "Deferred at month end", num: true, key: "deferred_end", cell: (m) => amount(m.deferred_end, currency) },
    ],
    months,
    {
      id: "revenue-summary",
      rowAttributes: (m) => ({ dataset: { month: m.month } }),
      footer: h(
        "tr",
        {},
        h("th", {}, "Total"),
        ["billed", "credited", "recognized"].map((key) => h("td", { class: "num", dataset: { field: key } }, amount(total(key), currency))),
        h("td", {}),
      ),
    },
  );
}

function waterfall(rows, currency) {
  const columns = [...new Set(rows.flatMap((row) => row.months.map((cell) => cell.month)))].sort();
  const cells = rows.map((row) => Object.fromEntries(row.months.map((cell) => [cell.month, cell.amount])));
  const largest = Math.max(1, ...rows.flatMap((row) => row.months.map((cell) => Math.abs(cell.amount))));
  const columnTotals = columns.map((month) => cells.reduce((sum, row) => sum + (row[month] || 0), 0));
  const shade = (value) => {
    const cell = h("td", { class: "num heat", dataset: value ? { amount: value } : null }, value ? amount(value, currency) : "");
    if (value) {
      const strength = Math.abs(value) / largest;
      cell.style.backgroundColor = value > 0 ? `rgba(31, 119, 180, ${(0.08 + strength * 0.72).toFixed(3)})` : `rgba(214, 39, 40, ${(0.12 + strength * 0.6).toFixed(3)})`;
      if (strength > 0.55) cell.classList.add("dark");
      cell.title = `${amount(value, currency)} ${currency}`;
    }
    return cell;
  };
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data waterfall", id: "waterfall" },
      h(
        "thead",
        {},
        h("tr", {}, h("th", {}, "Billed in"), h("th", { class: "num" }, "Billed"), columns.map((month) => h("th", { class: "num" }, shortMonth(month))), h("th", { class: "num" }, "Total")),
      ),
      h(
        "tbody",
        {},
        rows.map((row, index) =>
          h(
            "tr",
            { dataset: { month: row.billing_month } },
            h("th", {}, monthLabel(row.billing_month)),
            h("td", { class: "num", dataset: { field: "billed" } }, amount(row.billed, currency)),
            columns.map((month) => {
              const cell = shade(cells[index][month] || 0);
              cell.dataset.column = month;
              return cell;
            }),
            h("td", { class: "num total", dataset: { field: "total" } }, amount(row.months.reduce((sum, cell) => sum + cell.amount, 0), currency)),
          ),
        ),
      ),
      h(
        "tfoot",
        {},
        h(
          "tr",
          {},
          h("th", {}, "Recognized"),
          h("td", {}),
          columnTotals.map((value) => h("td", { class: "num" }, amount(value, currency))),
          h("td", {}),
        ),
      ),
    ),
  );
}

export default {
  title: "Revenue",
  async render(root, ctx) {
    const to = ctx.params.get("to") || thisMonth();
    const from = ctx.params.get("from") || addMonths(to, -11);
    const area = h("div", {});
    root.append(h("h1", {}, "Revenue recognition"), monthRange(ctx, from, to), area);
    area.append(h("p", { class: "loading" }, "Loading…"));
    const query = { from, to, currency: ctx.currency };
    const [summary, flow] = await Promise.all([
      attempt(ctx, area, () => read("/v1/revenue/summary", query)),
      attempt(ctx, area, () => read("/v1/revenue/waterfall", query)),
    ]);
    if (!summary || !flow || !ctx.current()) return;
    const currency = summary.currency;
    area.replaceChildren();
    if (!currency) {
      area.append(note("No invoice has been recorded yet: there is no revenue to show."));
      return;
    }
    const months = summary.months;
    const last = months[months.length - 1];
    const total = (key) => months.reduce((sum, m) => sum + m[key], 0);
    area.append(
      figures([
        { label: `Deferred revenue at the end of ${monthLabel(last.month)}`, value: money(last.deferred_end, currency), field: "deferred" },
        { label: "Billed in the period", value: money(total("billed"), currency), field: "billed" },
        { label: "Credited in the period", value: money(total("credited"), currency), field: "credited" },
        { label: "Recognized in the period", value: money(total("recognized"), currency), field: "recognized" },
      ]),
      card(
        `Billed and recognized each month, and the deferred balance at each month's end, ${currency}`,
        legend([
          { name: "Billed", cls: "s-billed" },
          { name: "Recognized", cls: "s-recognized" },
          { name: "Deferred at month end", cls: "s-deferred", line: true },
        ]),
        h("div", { class: "chart-box", id: "revenue-chart" }, summaryChart(months, currency)),
      ),
      card(`Month by month, ${currency}`, summaryTable(months, currency)),
      card(
        `Waterfall: each billing month's revenue by the month it is recognized, ${currency}`,
        note("Rows are the months invoices were issued in; columns the months their revenue is earned. Darker cells hold more."),
        flow.rows.some((row) => row.months.length) ? waterfall(flow.rows, currency) : note("Nothing billed in these months."),
      ),
    );
  },
};
