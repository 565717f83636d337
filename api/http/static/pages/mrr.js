// MRR and ARR by month, with the five movements that explain each month's change.

import { read } from "../api.js";
import { chart, legend } from "../charts.js";
import { card, h, note, table } from "../dom.js";
import { addMonths, amount, count, major, money, monthLabel, shortMonth, thisMonth } from "../format.js";
import { attempt, figures, monthRange, sign } from "./controls.js";

export const MOVEMENTS = [
  { key: "new", name: "New", cls: "s-new" },
  { key: "expansion", name: "Expansion", cls: "s-expansion" },
  { key: "reactivation", name: "Reactivation", cls: "s-reactivation" },
  { key: "contraction", name: "Contraction", cls: "s-contraction" },
  { key: "churn", name: "Churn", cls: "s-churn" },
];

export function netMovement(movements) {
  return MOVEMENTS.reduce((sum, m) => sum + (movements[m.key] || 0), 0);
}

function mrrChart(months, currency) {
  return chart({
    label: `MRR by month in ${currency}`,
    labels: months.map((m) => shortMonth(m.month)),
    lines: [
      {
        name: "MRR",
        cls: "s-mrr",
        area: true,
        values: months.map((m) => major(m.mrr, currency)),
        titles: months.map((m) => `${monthLabel(m.month)}: MRR ${money(m.mrr, currency)}, ARR ${money(m.arr, currency)}`),
      },
    ],
    right: { factor: 12, label: "ARR" },
  });
}

/** Each month's movements stacked as bars (gains above zero, losses below), with `line` (its
 * name, class and each month's amount) drawn over them. */
export function movementChart(months, currency, line, { label, height }) {
  return chart({
    label,
    labels: months.map((m) => shortMonth(m.month)),
    stacked: true,
    bars: MOVEMENTS.map((kind) => ({
      name: kind.name,
      cls: kind.cls,
      values: months.map((m) => major(m.movements[kind.key], currency)),
      titles: months.map((m) => `${monthLabel(m.month)}: ${kind.name} ${money(m.movements[kind.key], currency)}`),
    })),
    lines: [
      {
        name: line.name,
        cls: line.cls,
        values: months.map((m) => major(line.amount(m), currency)),
        titles: months.map((m) => `${monthLabel(m.month)}: ${line.name} ${money(line.amount(m), currency)}`),
      },
    ],
    height,
  });
}

function monthsTable(months, currency) {
  const totals = Object.fromEntries(MOVEMENTS.map((m) => [m.key, months.reduce((sum, month) => sum + month.movements[m.key], 0)]));
  const net = netMovement(totals);
  return table(
    [
      { label: "Month", cell: (m) => monthLabel(m.month) },
      { label: "MRR", num: true, key: "mrr", cell: (m) => amount(m.mrr, currency) },
      { label: "ARR", num: true, key: "arr", cell: (m) => amount(m.arr, currency) },
      { label: "Customers", num: true, key: "customers", cell: (m) => count(m.customers) },
      { label: "ARPA", num: true, key: "arpa", cell: (m) => amount(m.arpa, currency) },
      ...MOVEMENTS.map((kind) => ({
        label: kind.name,
        num: true,
        key: kind.key,
        cell: (m) => h("span", { class: sign(m.movements[kind.key]) }, amount(m.movements[kind.key], currency)),
      })),
      { label: "Net change", num: true, key: "net", cell: (m) => h("span", { class: sign(netMovement(m.movements)) }, amount(netMovement(m.movements), currency)) },
    ],
    months,
    {
      id: "mrr-table",
      rowAttributes: (m) => ({ dataset: { month: m.month } }),
      footer: h(
        "tr",
        {},
        h("th", {}, "Movements in the period"),
        h("td", { colspan: 4 }),
        MOVEMENTS.map((kind) => h("td", { class: "num", dataset: { field: kind.key } }, amount(totals[kind.key], currency))),
        h("td", { class: "num", dataset: { field: "net" } }, amount(net, currency)),
      ),
    },
  );
}

export default {
  title: "MRR",
  async render(root, ctx) {
    const to = ctx.params.get("to") || thisMonth();
    const from = ctx.params.get("from") || addMonths(to, -23);
    const area = h("div", {});
    root.append(h("h1", {}, "MRR and ARR"), monthRange(ctx, from, to), area);
    area.append(h("p", { class: "loading" }, "Loading…"));
    const body = await attempt(ctx, area, () => read("/v1/metrics/mrr", { from, to, currency: ctx.currency }));
    if (!body || !ctx.current()) return;
    const currency = body.currency || ctx.currency;
    const months = body.months;
    area.replaceChildren();
    if (!body.currency) {
      area.append(note("No subscription has been recorded yet: there is no MRR to show."));
      return;
    }
    const last = months[months.length - 1];
    const first = months[0];
    const change = months.reduce((sum, m) => sum + netMovement(m.movements), 0);
    area.append(
      figures([
        { label: `MRR, ${monthLabel(last.month)}`, value: money(last.mrr, currency), field: "mrr" },
        { label: `ARR, ${monthLabel(last.month)}`, value: money(last.arr, currency), field: "arr" },
        { label: "Paying customers", value: count(last.customers), field: "customers" },
        { label: "ARPA (MRR per customer)", value: money(last.arpa, currency), field: "arpa" },
        {
          label: `Net MRR change, ${monthLabel(first.month)} to ${monthLabel(last.month)}`,
          value: money(change, currency),
          cls: sign(change),
          field: "change",
        },
      ]),
      card(
        `MRR (left axis) and ARR (right axis), ${currency}, at each month's end`,
        h("div", { class: "chart-box", id: "mrr-chart" }, mrrChart(months, currency)),
      ),
      card(
        `What moved MRR each month, ${currency}`,
        legend([...MOVEMENTS, { name: "Net change", cls: "s-net", line: true }]),
        h(
          "div",
          { class: "chart-box", id: "movements-chart" },
          movementChart(
            months,
            currency,
            { name: "Net change", cls: "s-net", amount: (m) => netMovement(m.movements) },
            { label: `MRR movements by month in ${currency}`, height: 240 },
          ),
        ),
      ),
      card(`Month by month, ${currency}`, monthsTable(months, currency)),
    );
  },
};
