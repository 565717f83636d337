// The trial balance at the end of a day: every account's debits, credits and balance, with the
// totals that must agree.

import { read } from "../api.js";
import { card, h, note, table } from "../dom.js";
import { amount, money, today, words } from "../format.js";
import { attempt, figures } from "./controls.js";

function dayForm(ctx, asOf) {
  const form = h(
    "form",
    { class: "controls", id: "as-of-form" },
    h("label", {}, "At the end of ", h("input", { type: "date", name: "as_of", value: asOf, required: true })),
    h("button", { type: "submit" }, "Show"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.go({ as_of: new FormData(form).get("as_of") });
  });
  return form;
}

export default {
  title: "Trial balance",
  async render(root, ctx) {
    const asOf = ctx.params.get("as_of") || today();
    const area = h("div", {});
    root.append(h("h1", {}, "Trial balance"), dayForm(ctx, asOf), area);
    area.append(h("p", { class: "loading" }, "Loading…"));
    const body = await attempt(ctx, area, () => read("/v1/ledger/trial-balance", { as_of: asOf, currency: ctx.currency }));
    if (!body || !ctx.current()) return;
    const currency = body.currency;
    area.replaceChildren();
    if (!body.accounts.length) {
      area.append(note("Nothing has been booked by this day."));
      return;
    }
    const balanced = body.total_debit === body.total_credit;
    area.append(
      figures([
        { label: "Total debit", value: money(body.total_debit, currency), field: "total_debit" },
        { label: "Total credit", value: money(body.total_credit, currency), field: "total_credit" },
        {
          label: "Debits and credits",
          value: balanced ? "Balanced" : `Off by ${money(body.total_debit - body.total_credit, currency)}`,
          cls: balanced ? "positive" : "negative",
          field: "balanced",
        },
      ]),
      card(
        `Accounts at the end of ${body.as_of || asOf}, ${currency}`,
        table(
          [
            { label: "Account", key: "account", cell: (a) => a.account },
            { label: "Role", key: "role", cell: (a) => words(a.role) },
            { label: "Debit", num: true, key: "debit", cell: (a) => amount(a.debit, currency) },
            { label: "Credit", num: true, key: "credit", cell: (a) => amount(a.credit, currency) },
            { label: "Balance", num: true, key: "balance", cell: (a) => amount(a.balance, currency) },
          ],
          body.accounts,
          {
            id: "trial-balance",
            rowAttributes: (a) => ({ dataset: { account: a.account } }),
            footer: h(
              "tr",
              { class: "totals" },
              h("th", { colspan: 2 }, "Totals"),
              h("td", { class: "num", dataset: { field: "total_debit" } }, amount(body.total_debit, currency)),
              h("td", { class: "num", dataset: { field: "total_credit" } }, amount(body.total_credit, currency)),
              h("td", {}),
            ),
          },
        ),
        note("Balances are shown as each account is read: assets by their debit balance, liabilities and revenue by their credit balance."),
      ),
    );
  },
};
