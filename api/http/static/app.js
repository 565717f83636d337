// The dashboard: hash routes (#/mrr, #/customer/<id>, #/revenue, #/trial-balance, #/sync),
// the key, the currency and "known at" at the top, and a banner for what the API refuses.
// The whole view lives in the address (#/mrr?from=2025-01&to=2026-06&currency=DKK&known_at=...),
// so a view can be bookmarked or sent on, and the back button works.

import * as api from "./api.js";
import { h, note } from "./dom.js";
import { instantLabel, instantToLocal, localToInstant, setExponents, thisMonth, zoneName } from "./format.js";
import customer from "./pages/customer.js";
import mrr from "./pages/mrr.js";
import revenue from "./pages/revenue.js";
import sync from "./pages/sync.js";
import trialBalance from "./pages/trial_balance.js";

const PAGES = { mrr, customer, revenue, "trial-balance": trialBalance, sync };
const GLOBALS = ["currency", "known_at"];

const $ = (id) => document.getElementById(id);
let generation = 0;
let currencies = { key: null, list: [] };

function parse() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const page = PAGES[parts[0]] ? parts[0] : "mrr";
  return { page, rest: parts.slice(1), params: new URLSearchParams(query || "") };
}

function hrefOf(page, rest, params) {
  const path = [page, ...rest.map(encodeURIComponent)].join("/");
  const query = params.toString();
  return `#/${path}${query ? `?${query}` : ""}`;
}

function globalsOf(params) {
  const kept = new URLSearchParams();
  for (const name of GLOBALS) if (params.get(name)) kept.set(name, params.get(name));
  return kept;
}

/** Shows `text` in the banner: "error" for refusals, "info" for things to know. */
function banner(text, kind = "error") {
  $("banner").className = `banner ${kind}`;
  $("banner-text").textContent = text;
  $("banner").hidden = false;
}

function clearBanner() {
  $("banner").hidden = true;
  $("banner-text").textContent = "";
}

async function discoverCurrencies() {
  const cacheKey = `${api.apiKey()}|${parse().params.get("known_at") || ""}`;
  if (currencies.key === cacheKey) return currencies.list;
  const found = new Set();
  const month = thisMonth();
  for (const path of ["/v1/metrics/mrr", "/v1/revenue/summary"]) {
    try {
      const body = await api.read(path, { from: month, to: month });
      if (body && body.currency) found.add(body.currency);
    } catch (error) {
      if (error.code !== "CURRENCY_REQUIRED") return [];
      const named = /\(([A-Z]{3}(?:, [A-Z]{3})*)\)/.exec(error.message);
      if (named) named[1].split(", ").forEach((code) => found.add(code));
    }
  }
  currencies = { key: cacheKey, list: [...found].sort() };
  return currencies.list;
}

function showToolbar(state, list, chosen) {
  const select = $("currency");
  select.replaceChildren(
    ...(list.length ? list : chosen ? [chosen] : []).map((code) => h("option", { value: code }, code)),
  );
  if (!select.options.length) select.append(h("option", { value: "" }, "–"));
  select.value = chosen || "";
  const knownAt = state.params.get("known_at") || "";
  $("known-at").value = knownAt ? instantToLocal(knownAt) : "";
  $("api-key").placeholder = api.apiKey() ? `saved key …${api.apiKey().slice(-4)}` : "paste your API key";
  $("key-forget").hidden = !api.apiKey();
  const strip = $("as-of");
  document.body.classList.toggle("past", Boolean(knownAt));
  if (knownAt) {
    strip.replaceChildren(
      h("strong", {}, "Looking back: "),
      `every number below is the ledger as it was known at ${instantLabel(knownAt)} (${zoneName()}), `,
      h("code", {}, knownAt),
      ". ",
      h("a", { href: hrefOf(state.page, state.rest, without(state.params, "known_at")) }, "Back to now"),
    );
    strip.hidden = false;
  } else {
    strip.hidden = true;
  }
  const globals = globalsOf(state.params);
  for (const link of $("nav").querySelectorAll("a")) {
    link.href = hrefOf(link.dataset.page, [], globals);
    link.classList.toggle("active", link.dataset.page === state.page);
  }
}

function without(params, name) {
  const copy = new URLSearchParams(params);
  copy.delete(name);
  return copy;
}

function go(state, updates, page = state.page, rest = state.rest) {
  const params = page === state.page ? new URLSearchParams(state.params) : globalsOf(state.params);
  for (const [name, value] of Object.entries(updates)) {
    if (value === null || value === undefined || value === "") params.delete(name);
    else params.set(name, value);
  }
  const target = hrefOf(page, rest, params);
  if (target === location.hash) render();
  else location.hash = target;
}

async function render() {
  generation += 1;
  const mine = generation;
  const state = parse();
  const knownAt = state.params.get("known_at") || "";
  api.setKnownAt(knownAt);
  clearBanner();
  $("status").textContent = "";
  const root = $("page");
  root.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  const list = api.apiKey() ? await discoverCurrencies() : [];
  if (mine !== generation) return;
  $("status").textContent = "";
  const chosen = state.params.get("currency") || list[0] || "";
  showToolbar(state, list, chosen);
  const page = PAGES[state.page];
  document.title = `${page.title} · subledger`;
  const context = {
    rest: state.rest,
    params: state.params,
    currency: chosen,
    knownAt,
    current: () => mine === generation,
    go: (updates, target, rest) => go(state, updates, target, rest),
    href: (target, rest = [], params = {}) => {
      const query = globalsOf(state.params);
      for (const [name, value] of Object.entries(params)) if (value) query.set(name, value);
      return hrefOf(target, rest, query);
    },
    fail: (error) => {
      if (mine !== generation) return note("");
      banner(api.explain(error), error.code === "NO_KEY" ? "info" : "error");
      return note(error.code === "NO_KEY" ? error.message : "Nothing to show: the service refused this view (see above).", "empty");
    },
    tell: (text, kind = "info") => banner(text, kind),
  };
  root.replaceChildren();
  try {
    await page.render(root, context);
  } catch (error) {
    if (mine === generation) root.replaceChildren(context.fail(error));
  }
}

function boot() {
  api.onPosition((position) => {
    $("status").textContent = `Answers reflect the log up to position ${position.toLocaleString("en-US")}.`;
  });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("api-key").value.trim();
    if (value) api.setApiKey(value);
    $("api-key").value = "";
    currencies = { key: null, list: [] };
    render();
  });
  $("key-forget").addEventListener("click", () => {
    api.setApiKey("");
    currencies = { key: null, list: [] };
    render();
  });
  $("currency").addEventListener("change", (event) => go(parse(), { currency: event.target.value }));
  $("known-at-form").addEventListener("submit", (event) => {
    event.preventDefault();
    go(parse(), { known_at: localToInstant($("known-at").value) });
  });
  $("known-at-now").addEventListener("click", () => go(parse(), { known_at: null }));
  $("banner-close").addEventListener("click", clearBanner);
  window.addEventListener("hashchange", render);
  api.exponents().then((table) => {
    setExponents(table);
    if (!location.hash) location.replace("#/mrr");
    render();
  });
}

boot();
