// One customer: MRR by month with each month's movement and the events that caused it, and
// every event of the customer with what it produced (where the service offers its audit).

import { paths, read } from "../api.js";
import { legend } from "../charts.js";
import { card, h, note, table } from "../dom.js";
import { addMonths, amount, instantLabel, money, monthLabel, shortMonth, thisMonth, words } from "../format.js";
import { attempt, figures, sign } from "./controls.js";
import { MOVEMENTS, movementChart, netMovement } from "./mrr.js";

const AUDIT_PATH = "/v1/audit/{kind}/{item_id}";
let offered = null;

async function auditOffered() {
  if (offered === null) offered = (await paths()).has(AUDIT_PATH);
  return offered;
}

function form(ctx, id, from, to) {
  const element = h(
    "form",
    { class: "controls", id: "customer-form" },
    h("label", {}, "Customer id ", h("input", { name: "id", value: id, placeholder: "cus_1_000001", required: true, spellcheck: "false" })),
    h("label", {}, "From ", h("input", { type: "month", name: "from", value: from, required: true })),
    h("label", {}, "To ", h("input", { type: "month", name: "to", value: to, required: true })),
    h("button", { type: "submit" }, "Show"),
  );
  element.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(element).entries());
    ctx.go({ from: values.from, to: values.to }, "customer", [values.id.trim()]);
  });
  return element;
}

async function customerMrr(id, from, to, currency) {
  const path = `/v1/customers/${encodeURIComponent(id)}/mrr`;
  try {
    return await read(path, { from, to });
  } catch (error) {
    // A customer billed in two currencies: the one chosen at the top.
    if (error.code === "CURRENCY_REQUIRED" && currency) return read(path, { from, to, currency });
    throw error;
  }
}

function movementText(movements, currency) {
  const moved = MOVEMENTS.filter((kind) => movements[kind.key]);
  if (!moved.length) return "";
  return moved.map((kind) => `${kind.name} ${money(movements[kind.key], currency)}`).join(", ");
}

function jumpTo(eventId) {
  const row = document.querySelector(`tr[data-event="${CSS.escape(eventId)}"]`);
  if (!row) return;
  row.scrollIntoView({ behavior: "smooth", block: "center" });
  row.classList.add("flash");
  setTimeout(() => row.classList.remove("flash"), 1600);
}

function eventLinks(ids) {
  return ids.map((eventId) =>
    h("button", { type: "button", class: "link event-id", onclick: () => jumpTo(eventId), title: "Show this event below" }, eventId),
  );
}

function monthsTable(months, currency) {
  return table(
    [
      { label: "Month", cell: (m) => monthLabel(m.month) },
      { label: "MRR", num: true, key: "mrr", cell: (m) => amount(m.mrr, currency) },
      { label: "ARR", num: true, key: "arr", cell: (m) => amount(m.arr, currency) },
      {
        label: "Movement",
        key: "movement",
        cell: (m) => h("span", { class: sign(netMovement(m.movements)) }, movementText(m.movements, currency)),
      },
      { label: "Caused by", key: "events", cell: (m) => eventLinks(m.event_ids || []) },
    ],
    months,
    {
      id: "customer-months",
      rowAttributes: (m) => ({ dataset: { month: m.month }, class: (m.event_ids || []).length ? "moved" : null }),
    },
  );
}

function items(list, currency) {
  return (list || []).map((item) => `${item.quantity} × ${item.product_id} at ${money(item.unit_amount, currency)}`).join(", ");
}

/** One line about what an event says, by its type. */
export function describe(type, data, fallbackCurrency) {
  const currency = data.currency || fallbackCurrency;
  switch (type) {
    case "customer.created":
    case "customer.updated":
      return [data.erased ? "erased customer" : data.name, data.country, data.kind, data.customer_number && `no. ${data.customer_number}`].filter(Boolean).join(", ");
    case "customer.erased":
      return "personal data erased";
    case "subscription.started":
      return `${data.subscription_id} from ${data.start_date}: ${items(data.items, currency)} per ${data.interval_count > 1 ? `${data.interval_count} ` : ""}${data.interval}${data.trial_end ? `, trial to ${data.trial_end}` : ""}`;
    case "subscription.changed":
      return `${data.subscription_id} from ${data.effective_date}: ${items(data.items, currency)}`;
    case "subscription.paused":
    case "subscription.resumed":
      return `${data.subscription_id} from ${data.effective_date}`;
    case "subscription.cancelled":
      return `${data.subscription_id}, ends ${data.effective_date}${data.reason ? ` (${data.reason})` : ""}`;
    case "invoice.issued": {
      const periods = (data.lines || []).filter((l) => l.period_start).map((l) => `${l.period_start} to ${l.period_end}`);
      return `${data.number || data.invoice_id} of ${data.issue_date}, ${(data.lines || []).length} line(s)${periods.length ? `, ${[...new Set(periods)].join("; ")}` : ""}`;
    }
    case "payment.received":
      return `${data.payment_id}: ${money(data.amount, currency)} by ${data.method} on ${data.received_on} for ${data.invoice_id}`;
    case "payment.failed":
      return `${data.payment_id}: ${money(data.amount, currency)} failed on ${data.failed_on}${data.reason ? ` (${data.reason})` : ""}`;
    case "payment.refunded":
      return `${data.refund_id}: ${money(data.amount, currency)} of ${data.payment_id} refunded on ${data.refunded_on}`;
    case "credit_note.issued":
      return `${data.number || data.credit_note_id} of ${data.issue_date} against ${data.invoice_id}`;
    default:
      return Object.entries(data || {})
        .filter(([, value]) => value !== null && typeof value !== "object")
        .map(([name, value]) => `${name}: ${value}`)
        .join(", ");
  }
}

function produced(what) {
  if (!what) return [];
  const lines = [];
  for (const row of what.mrr || []) {
    const moved = MOVEMENTS.filter((kind) => row[kind.key]).map((kind) => `${kind.name.toLowerCase()} ${money(row[kind.key], row.currency)}`);
    const change = row.mrr_change ? `MRR ${row.mrr_change > 0 ? "+" : ""}${money(row.mrr_change, row.currency)}` : "";
    lines.push(`${monthLabel(row.month)}: ${[change, ...moved].filter(Boolean).join(", ") || "MRR unchanged"}`);
  }
  const recognized = (what.recognition || []).filter((row) => row.recognized);
  if (recognized.length) {
    lines.push(`Recognized: ${recognized.map((row) => `${shortMonth(row.month)} ${money(row.recognized, row.currency)}`).join(", ")}`);
  }
  for (const entry of what.entries || []) {
    const debit = entry.lines.reduce((sum, line) => sum + line.debit, 0);
    lines.push(`Journal: ${words(entry.kind || "entry")} ${entry.date}, ${money(debit, entry.currency)}${entry.status === "scheduled" ? " (scheduled)" : ""}`);
  }
  const outbox = (what.outbox || []).map((message) => message.kind);
  if (outbox.length) lines.push(`To sync: ${outbox.join(", ")}`);
  return lines;
}

function auditTable(events, causes, currency) {
  return table(
    [
      { label: "Position", num: true, cell: (e) => e.position },
      { label: "Recorded", cell: (e) => instantLabel(e.recorded_at) },
      { label: "Event", cell: (e) => h("code", {}, e.id) },
      { label: "Type", cell: (e) => e.type },
      { label: "What it says", cell: (e) => describe(e.type, e.data || {}, currency) },
      { label: "What it produced", cell: (e) => h("ul", { class: "produced" }, produced(e.produced).map((line) => h("li", {}, line))) },
    ],
    events,
    {
      id: "customer-events",
      rowAttributes: (e) => ({ dataset: { event: e.id }, class: causes.has(e.id) ? "cause" : null }),
    },
  );
}

function causesList(months, currency) {
  const moved = months.filter((m) => (m.event_ids || []).length);
  if (!moved.length) return note("No movement in these months.");
  return table(
    [
      { label: "Month", cell: (m) => monthLabel(m.month) },
      { label: "Movement", cell: (m) => movementText(m.movements, currency) },
      { label: "Events", cell: (m) => m.event_ids.map((id) => h("code", { class: "event-id" }, id)) },
    ],
    moved,
    { id: "customer-events", rowAttributes: (m) => ({ dataset: { month: m.month } }) },
  );
}

export default {
  title: "Customer",
  async render(root, ctx) {
    const id = ctx.rest[0] || "";
    const to = ctx.params.get("to") || thisMonth();
    const from = ctx.params.get("from") || addMonths(to, -23);
    const area = h("div", {});
    root.append(h("h1", {}, "Customer drill-down"), form(ctx, id, from, to), area);
    if (!id) {
      area.append(note("Enter a customer id to see its MRR month by month and the events behind it."));
      return;
    }
    area.append(h("p", { class: "loading" }, "Loading…"));
    const body = await attempt(ctx, area, () => customerMrr(id, from, to, ctx.currency));
    if (!body || !ctx.current()) return;
    const currency = body.currency;
    const months = body.months;
    const last = months[months.length - 1];
    const causes = new Set(months.flatMap((m) => m.event_ids || []));
    area.replaceChildren(
      figures([
        { label: "Customer", value: body.customer_id, field: "customer" },
        { label: `MRR, ${monthLabel(last.month)}`, value: money(last.mrr, currency), field: "mrr" },
        { label: `ARR, ${monthLabel(last.month)}`, value: money(last.arr, currency), field: "arr" },
        { label: "Events behind movements", value: String(causes.size), field: "causes" },
      ]),
    );
    if (!currency) {
      area.append(note("This customer has no subscription yet: no MRR to show."));
    } else {
      area.append(
        card(
          `MRR and its movements, ${currency}`,
          legend([...MOVEMENTS, { name: "MRR", cls: "s-mrr", line: true }]),
          h(
            "div",
            { class: "chart-box", id: "customer-chart" },
            movementChart(
              months,
              currency,
              { name: "MRR", cls: "s-mrr", amount: (m) => m.mrr },
              { label: `${body.customer_id}'s MRR by month`, height: 220 },
            ),
          ),
        ),
        card(`Month by month, ${currency}`, monthsTable(months, currency)),
      );
    }
    const events = card("Events");
    area.append(events);
    if (!(await auditOffered())) {
      events.append(
        note(
          "The events that caused each movement, as the MRR answer names them. " +
            "The customer's full history (every event with its position, recorded time and what it produced) shows here where the service offers its audit.",
        ),
        causesList(months, currency),
      );
      return;
    }
    events.append(h("p", { class: "loading" }, "Loading…"));
    const audit = await attempt(ctx, events, () => read(`/v1/audit/customer/${encodeURIComponent(id)}`));
    if (!audit || !ctx.current()) return;
    events.replaceChildren(
      h("h2", {}, `Every event of ${id} (${audit.events.length}), and what each produced`),
      note("Events that caused a movement in the months above are marked."),
      auditTable(audit.events, causes, currency),
    );
  },
};
