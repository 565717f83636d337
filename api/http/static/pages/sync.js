// Syncing to the accounting systems: each target green or red (its mode, last success and last
// error) with a "Sync now" button, where each target stands (its messages by status, how long
// the oldest unsent one has waited, the customers held behind a failed message), a customer's
// lane with "Send again", the messages themselves (the failed ones first, with the target's
// error), a retry of a failed one and a resend of a sent one.

import { ApiError, explain, post, readNow } from "../api.js";
import { card, h, note, table } from "../dom.js";
import { age, count, instantLabel, money, monthLabel, words } from "../format.js";
import { figures } from "./controls.js";

const STATUSES = ["pending", "sending", "sent", "failed", "waiting"];

/** Where each target stands, as the first page of the messages carries it. */
async function readTargets() {
  const body = await readNow("/v1/sync/messages", { limit: 1 });
  return body.targets || {};
}

const MODES = { continuous: "Continuous", scheduled: "Scheduled", manual: "Manual" };

/** A period in seconds as the configuration spells it: 10800 → "every 3 h". */
function period(seconds) {
  if (!seconds) return "";
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
    if (seconds % size === 0) return `every ${seconds / size} ${unit}`;
  }
  return `every ${seconds} s`;
}

/** A green or red badge. */
function badge(state) {
  const green = state === "green";
  return h("span", { class: `state ${green ? "positive" : "negative"}`, dataset: { state } }, green ? "● Green" : "● Red");
}

function lastError(error) {
  if (!error) return "–";
  return h("div", {}, h("div", { class: "error-text" }, error.message), h("div", { class: "note" }, instantLabel(error.at)));
}

/** Each target green or red, its mode, its last success and its last error. */
function healthTable(status) {
  const names = Object.keys(status).sort();
  return table(
    [
      { label: "Target", key: "target", cell: (name) => name },
      { label: "State", key: "state", cell: (name) => badge(status[name].state) },
      { label: "Mode", key: "mode", cell: (name) => [MODES[status[name].mode] || status[name].mode, " ", h("span", { class: "note" }, period(status[name].every_seconds))] },
      { label: "Last success", key: "last_success", cls: "nowrap", cell: (name) => (status[name].last_success_at ? instantLabel(status[name].last_success_at) : "never") },
      { label: "Last error", key: "last_error", cell: (name) => lastError(status[name].last_error) },
    ],
    names,
    { id: "sync-health", rowAttributes: (name) => ({ dataset: { target: name, state: status[name].state } }) },
  );
}

/** "Sync now": everything pending sent at once, whatever each target's mode. */
function syncNowButton(ctx) {
  const button = h("button", { type: "button", id: "sync-now" }, "Sync now");
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = "Starting…";
    try {
      const run = await post("/v1/sync/run");
      const parts = Object.entries(run.targets).map(([name, one]) => `${name}: ${count(one.pending)} pending`);
      ctx.tell(`Sync started: everything pending is being sent (${parts.join("; ") || "no target"}). Reload to follow it.`, "success");
    } catch (error) {
      const hint = error instanceof ApiError && error.status === 403 ? " Syncing now needs a key with the admin scope." : "";
      ctx.tell(`Sync now was refused: ${explain(error)}${hint}`, "error");
    } finally {
      button.disabled = false;
      button.textContent = "Sync now";
    }
  });
  return button;
}

/** A customer's lane at each target, and a button that sends all of it again. */
function customerLookup(ctx) {
  const shown = h("div", { id: "sync-customer" });
  const form = h(
    "form",
    { class: "controls", id: "sync-customer-form" },
    h("label", {}, "Customer ", h("input", { name: "customer", placeholder: "customer id", required: true })),
    h("button", { type: "submit" }, "Show"),
  );
  const show = async (customer) => {
    shown.replaceChildren(h("p", { class: "loading" }, "Reading…"));
    let body;
    try {
      body = await readNow(`/v1/sync/customers/${encodeURIComponent(customer)}`);
    } catch (error) {
      shown.replaceChildren(error instanceof ApiError && error.status === 404 ? note(`No message of ${customer} yet.`, "friendly") : ctx.fail(error));
      return;
    }
    const names = Object.keys(body.targets).sort();
    const again = h("button", { type: "button", id: "sync-customer-resend" }, "Send this customer again");
    again.addEventListener("click", async () => {
      again.disabled = true;
      try {
        const done = await post(`/v1/sync/customers/${encodeURIComponent(customer)}/resend`);
        const total = Object.values(done.resent).reduce((sum, n) => sum + n, 0);
        ctx.tell(`${count(total)} messages of ${customer} are being sent again; nothing already at the target is made twice.`, "success");
      } catch (error) {
        ctx.tell(`The resend was refused: ${explain(error)}`, "error");
      } finally {
        again.disabled = false;
      }
    });
    shown.replaceChildren(
      table(
        [
          { label: "Target", key: "target", cell: (name) => name },
          { label: "State", key: "state", cell: (name) => badge(body.targets[name].state) },
          ...STATUSES.map((status) => ({ label: words(status), num: true, key: status, cell: (name) => count(body.targets[name][status]) })),
          { label: "Last success", key: "last_success", cls: "nowrap", cell: (name) => (body.targets[name].last_success_at ? instantLabel(body.targets[name].last_success_at) : "never") },
          { label: "Last error", key: "last_error", cell: (name) => lastError(body.targets[name].last_error) },
        ],
        names,
        { id: "sync-customer-lanes", rowAttributes: (name) => ({ dataset: { target: name, state: body.targets[name].state } }) },
      ),
      again,
    );
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const customer = new FormData(form).get("customer");
    if (customer) show(String(customer));
  });
  return h("div", {}, form, shown);
}

/** The green-or-red card: each target's state, mode, last success and last error, and "Sync now". */
async function showHealth(ctx, healthCard) {
  let body;
  try {
    body = await readNow("/v1/sync/status");
  } catch (error) {
    if (ctx.current()) healthCard.replaceChildren(ctx.fail(error));
    return;
  }
  if (!ctx.current()) return;
  healthCard.replaceChildren(
    h("div", { class: "controls" }, h("h2", {}, "Green or red"), syncNowButton(ctx)),
    Object.keys(body.targets).length ? healthTable(body.targets) : note("No target is configured.", "friendly"),
    note(
      "Red: a message was refused (it holds its customer's later messages until it is sent again), or the latest attempt met an error. " +
        "Sync now sends everything pending at once, also to manual and scheduled targets.",
      "info",
    ),
  );
}

function targetsTable(targets) {
  const names = Object.keys(targets).sort();
  const alarming = (name, field) => (targets[name][field] ? "negative" : null);
  return table(
    [
      { label: "Target", key: "target", cell: (name) => name },
      ...STATUSES.map((status) => ({
        label: words(status),
        num: true,
        key: status,
        cell: (name) => h("span", { class: status === "failed" ? alarming(name, "failed") : null }, count(targets[name][status])),
      })),
      {
        label: "Oldest pending",
        num: true,
        key: "oldest_pending",
        cell: (name) => {
          const since = targets[name].oldest_pending_at;
          return h("span", { title: since ? `waiting since ${instantLabel(since)}` : null, dataset: since ? { since } : null }, age(targets[name].oldest_pending_seconds));
        },
      },
      {
        label: "Held lanes",
        num: true,
        key: "held_lanes",
        cell: (name) => h("span", { class: alarming(name, "held_lanes") }, count(targets[name].held_lanes)),
      },
      {
        label: "Held messages",
        num: true,
        key: "held_messages",
        cell: (name) => h("span", { class: alarming(name, "held_messages") }, count(targets[name].held_messages)),
      },
    ],
    names,
    { id: "sync-counts", rowAttributes: (name) => ({ dataset: { target: name } }) },
  );
}

function filters(ctx, status, target, targets) {
  const form = h(
    "form",
    { class: "controls", id: "sync-filter" },
    h(
      "label",
      {},
      "Status ",
      h("select", { name: "status" }, STATUSES.map((one) => h("option", { value: one, selected: one === status }, words(one)))),
    ),
    h(
      "label",
      {},
      "Target ",
      h(
        "select",
        { name: "target" },
        h("option", { value: "" }, "All"),
        targets.map((one) => h("option", { value: one, selected: one === target }, one)),
      ),
    ),
    h("button", { type: "submit" }, "Show"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form).entries());
    ctx.go({ status: values.status, target: values.target });
  });
  return form;
}

function retryButton(ctx, message, row) {
  const button = h("button", { type: "button", class: "retry", dataset: { message: message.id } }, "Retry");
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = "Retrying…";
    try {
      const after = await post(`/v1/sync/messages/${encodeURIComponent(message.id)}/retry`);
      row.querySelector("[data-field=status]").textContent = words(after.status);
      row.classList.remove("failed");
      button.replaceWith(h("span", { class: "done" }, "Queued again"));
      ctx.tell(`The ${message.kind} message for ${message.customer_id || "the books"} is queued for another attempt at ${message.target}.`, "success");
    } catch (error) {
      button.disabled = false;
      button.textContent = "Retry";
      const hint = error instanceof ApiError && error.status === 403 ? " Retrying needs a key with the admin scope." : "";
      ctx.tell(`The retry was refused: ${explain(error)}${hint}`, "error");
    }
  });
  return button;
}

/** What a message carries, in a few words: the document's number and amount, or the contact. */
function documentOf(message) {
  const payload = message.payload || {};
  const sum = (value) => (value !== undefined && payload.currency ? money(value, payload.currency) : "");
  const join = (...parts) => parts.filter(Boolean).join(" · ");
  switch (message.kind) {
    case "contact":
      return payload.name || payload.customer_id || "";
    case "invoice":
    case "credit_note":
      return join(payload.number, sum(payload.gross));
    case "payment":
      return join(payload.payment_id, payload.invoice_number && `on ${payload.invoice_number}`, sum(payload.amount));
    case "refund":
      return join(payload.refund_id, sum(payload.amount));
    case "recognition": {
      const earned = {};
      for (const line of payload.lines || []) {
        if (line.side === "credit") earned[line.currency] = (earned[line.currency] || 0) + line.amount;
      }
      const amounts = Object.entries(earned).map(([currency, value]) => money(value, currency));
      return join(payload.month && `Revenue of ${monthLabel(payload.month)}`, ...amounts);
    }
    default:
      return "";
  }
}

function resendButton(ctx, message, row) {
  const button = h("button", { type: "button", class: "resend quiet", dataset: { message: message.id } }, "Send again");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const after = await post(`/v1/sync/messages/${encodeURIComponent(message.id)}/resend`);
      row.querySelector("[data-field=status]").textContent = words(after.status);
      button.replaceWith(h("span", { class: "done" }, "Queued again"));
      ctx.tell(`The ${message.kind} message for ${message.customer_id || "the books"} is being sent again to ${message.target}; nothing there is made twice.`, "success");
    } catch (error) {
      button.disabled = false;
      ctx.tell(`The resend was refused: ${explain(error)}`, "error");
    }
  });
  return button;
}

function messagesTable(ctx, messages) {
  const wrap = table(
    [
      { label: "Target", cell: (m) => m.target },
      { label: "Kind", cell: (m) => words(m.kind) },
      {
        label: "Customer",
        cell: (m) => (m.customer_id ? h("a", { href: ctx.href("customer", [m.customer_id]) }, m.customer_id) : "–"),
      },
      { label: "Document", key: "document", cell: (m) => documentOf(m) },
      { label: "Dated", cls: "nowrap", cell: (m) => m.dated || "–" },
      { label: "Status", key: "status", cell: (m) => words(m.status) },
      { label: "Attempts", num: true, cell: (m) => m.attempts },
      {
        label: "Error, or when sent",
        key: "detail",
        cell: (m) =>
          m.last_error ? h("div", { class: "error-text" }, m.last_error) : m.sent_at ? `sent ${instantLabel(m.sent_at)}` : m.waiting_for ? `waiting for ${m.waiting_for}` : m.held ? "waiting for the next run" : m.next_attempt_at ? `next try ${instantLabel(m.next_attempt_at)}` : "",
      },
      { label: "", key: "action", cell: () => "" },
    ],
    messages,
    { id: "sync-messages", rowAttributes: (m) => ({ dataset: { message: m.id }, class: m.status === "failed" ? "failed" : null, title: m.id }) },
  );
  messages.forEach((message, index) => {
    const row = wrap.querySelectorAll("tbody tr")[index];
    if (message.status === "failed") row.querySelector("[data-field=action]").append(retryButton(ctx, message, row));
    else if (message.status === "sent") row.querySelector("[data-field=action]").append(resendButton(ctx, message, row));
  });
  return wrap;
}

function unavailable(error) {
  return note(
    `Syncing is not set up on this service: ${error.message}. ` +
      "Once it runs on a database with targets named in subledger.toml, their messages show here.",
    "friendly",
  );
}

export default {
  title: "Sync",
  async render(root, ctx) {
    const status = STATUSES.includes(ctx.params.get("status")) ? ctx.params.get("status") : "failed";
    const target = ctx.params.get("target") || "";
    root.append(h("h1", {}, "Syncing to accounting systems"));
    if (ctx.knownAt) root.append(note("The delivery log is shown as it is now: \"known at\" does not apply to it.", "friendly"));
    const healthCard = card("Green or red", h("p", { class: "loading" }, "Reading…"));
    const countsCard = card("Where each target stands", h("p", { class: "loading" }, "Counting…"));
    const customerCard = card("A customer's messages", customerLookup(ctx));
    const listCard = card(`${words(status)} messages`);
    root.append(healthCard, countsCard, customerCard, listCard);
    let targets;
    try {
      targets = await readTargets();
    } catch (error) {
      if (!ctx.current()) return;
      if (error.code === "SYNC_UNAVAILABLE") {
        countsCard.replaceChildren(unavailable(error));
        listCard.remove();
        customerCard.remove();
        healthCard.remove();
      } else {
        countsCard.replaceChildren(ctx.fail(error));
      }
      return;
    }
    if (!ctx.current()) return;
    showHealth(ctx, healthCard);
    const names = Object.keys(targets).sort();
    const total = (field) => names.reduce((sum, name) => sum + (targets[name][field] || 0), 0);
    countsCard.replaceChildren(h("h2", {}, "Where each target stands"));
    if (!names.length) {
      countsCard.append(note("No message yet: no target is configured, or nothing has been recorded.", "friendly"));
      listCard.remove();
      customerCard.remove();
      return;
    }
    countsCard.append(
      figures([
        ...STATUSES.map((one) => ({
          label: words(one),
          value: count(total(one)),
          cls: one === "failed" && total(one) ? "negative" : "",
          field: one,
        })),
        {
          label: "Held lanes",
          value: count(total("held_lanes")),
          cls: total("held_lanes") ? "negative" : "",
          field: "held_lanes",
          hint: `${count(total("held_messages"))} messages waiting behind a failure`,
        },
      ]),
      targetsTable(targets),
      note(
        "Oldest pending: how long the oldest unsent message has waited since it was queued, retried or replayed. " +
          "A failed message holds its lane (a customer, or the books' vouchers): nothing later of it is sent until the failed one is retried.",
        "info",
      ),
    );
    listCard.append(filters(ctx, status, target, names));
    const list = h("div", {});
    listCard.append(list);
    let after = null;
    const more = h("button", { type: "button", class: "quiet", id: "sync-more" }, "Show more");
    const load = async () => {
      let body;
      try {
        body = await readNow("/v1/sync/messages", { status, target, limit: 50, after });
      } catch (error) {
        if (ctx.current()) list.append(ctx.fail(error));
        return;
      }
      if (!ctx.current()) return;
      if (!body.messages.length && !after) {
        const none = status === "failed" ? "No failed message: every target took what it was sent." : `No ${status} message.`;
        list.append(note(none, "friendly"));
      } else {
        list.append(messagesTable(ctx, body.messages));
      }
      after = body.next;
      if (after) list.append(more);
      else more.remove();
    };
    more.addEventListener("click", () => {
      more.remove();
      load();
    });
    await load();
  },
};
