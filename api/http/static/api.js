// Calls to the JSON API: every one with the key as `Authorization: Bearer <key>`, every read
// with `known_at` when the reader asked for a past view. Refusals become ApiError, with the
// API's own code and message.

const KEY_STORE = "subledger.apiKey";

export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let knownAt = "";
let listener = () => {};

export function apiKey() {
  return localStorage.getItem(KEY_STORE) || "";
}

export function setApiKey(value) {
  if (value) localStorage.setItem(KEY_STORE, value);
  else localStorage.removeItem(KEY_STORE);
}

/** The instant every read is made as of ("" for now). */
export function setKnownAt(instant) {
  knownAt = instant || "";
}

/** `callback(position, path)` after each answer that names the log position it reflects. */
export function onPosition(callback) {
  listener = callback;
}

async function call(method, path, params) {
  const key = apiKey();
  if (!key) {
    throw new ApiError(0, "NO_KEY", "Enter an API key at the top to read the ledger.");
  }
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") query.set(name, value);
  }
  const url = path + (query.toString() ? `?${query}` : "");
  let answer;
  try {
    answer = await fetch(url, {
      method,
      headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, "UNREACHABLE", `The service did not answer (${error.message}).`);
  }
  const text = await answer.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!answer.ok) {
    const refusal = body && body.error;
    if (refusal && refusal.code) {
      throw new ApiError(answer.status, refusal.code, refusal.message || refusal.code, refusal.details || []);
    }
    throw new ApiError(answer.status, `HTTP_${answer.status}`, text.slice(0, 200) || answer.statusText);
  }
  const position = answer.headers.get("X-Log-Position");
  if (position !== null) listener(Number(position), path);
  return body;
}

/** A read of the ledger, as of "known at" when one is set. */
export function read(path, params = {}) {
  return call("GET", path, knownAt ? { ...params, known_at: knownAt } : params);
}

/** A read of something the log does not date (the delivery log's current state). */
export function readNow(path, params = {}) {
  return call("GET", path, params);
}

export function post(path) {
  return call("POST", path, {});
}

/** What the service offers: its OpenAPI document's paths (needs no key). */
export async function paths() {
  try {
    const answer = await fetch("/openapi.json", { cache: "no-store" });
    if (!answer.ok) return new Set();
    return new Set(Object.keys((await answer.json()).paths || {}));
  } catch {
    return new Set();
  }
}

/** The currency exponents the service knows (needs no key). */
export async function exponents() {
  try {
    const answer = await fetch("/dashboard/currencies.json");
    return answer.ok ? await answer.json() : {};
  } catch {
    return {};
  }
}

/** What a refusal means, in words, from the API's code and message. */
export function explain(error) {
  if (!(error instanceof ApiError)) return `Something went wrong in the page: ${error.message}`;
  const status = error.status ? ` (${error.status} ${error.code})` : "";
  if (error.code === "NO_KEY") return error.message;
  if (error.status === 401) return `The API key was refused: ${error.message}${status}. Enter a valid key at the top.`;
  if (error.status === 403) return `This key may not do that: ${error.message}${status}.`;
  const detail = (error.details || []).map((d) => [d.field, d.message].filter(Boolean).join(": ")).filter(Boolean);
  return `${error.message}${detail.length ? ` (${detail.join("; ")})` : ""}${status}`;
}
