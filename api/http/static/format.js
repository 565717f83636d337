// Money, months and instants as a reader expects them. Amounts arrive as integers of minor
// units; they are turned into major units by string arithmetic, never through floating point.

let exponents = {};

/** The number of decimals of each currency's minor unit, from the service. */
export function setExponents(table) {
  exponents = table || {};
}

function decimalsOf(currency) {
  const known = exponents[currency];
  return Number.isInteger(known) ? known : 2;
}

function grouped(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** 123456 -> "1,234.56" (for a two-decimal currency); negative amounts get a leading "-". */
export function amount(minor, currency) {
  if (minor === null || minor === undefined) return "–";
  const decimals = decimalsOf(currency);
  const negative = minor < 0;
  let digits = String(Math.abs(minor));
  if (decimals > 0) digits = digits.padStart(decimals + 1, "0");
  const whole = decimals > 0 ? digits.slice(0, -decimals) : digits;
  const fraction = decimals > 0 ? "." + digits.slice(-decimals) : "";
  return (negative ? "-" : "") + grouped(whole) + fraction;
}

/** 123456, "DKK" -> "1,234.56 DKK". */
export function money(minor, currency) {
  if (minor === null || minor === undefined) return "–";
  return currency ? `${amount(minor, currency)} ${currency}` : amount(minor, currency);
}

/** Minor units as a plain number of major units, for drawing only. */
export function major(minor, currency) {
  return minor / 10 ** decimalsOf(currency);
}

/** A count: 1234 -> "1,234". */
export function count(value) {
  return value === null || value === undefined ? "–" : grouped(String(value));
}

const MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "2026-06" -> "Jun 2026". */
export function monthLabel(month) {
  const [year, number] = month.split("-");
  return `${MONTH_NAMES[Number(number) - 1]} ${year}`;
}

/** "2026-06" -> "Jun 26", for axes. */
export function shortMonth(month) {
  const [year, number] = month.split("-");
  return `${MONTH_NAMES[Number(number) - 1]} ${year.slice(2)}`;
}

/** The month `offset` months from `month` ("YYYY-MM"). */
export function addMonths(month, offset) {
  const [year, number] = month.split("-").map(Number);
  const index = year * 12 + (number - 1) + offset;
  return `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, "0")}`;
}

function pad(number) {
  return String(number).padStart(2, "0");
}

/** This month, by the reader's clock: "YYYY-MM". */
export function thisMonth() {
  const now = new Date();
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}`;
}

/** Today, by the reader's clock: "YYYY-MM-DD". */
export function today() {
  const now = new Date();
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

/** The value of a datetime-local input (the reader's zone) as an ISO instant in UTC. */
export function localToInstant(local) {
  if (!local) return "";
  const moment = new Date(local);
  return Number.isNaN(moment.getTime()) ? "" : moment.toISOString().replace(".000Z", "Z");
}

/** An ISO instant as the value of a datetime-local input, in the reader's zone. */
export function instantToLocal(instant) {
  const moment = new Date(instant);
  if (Number.isNaN(moment.getTime())) return "";
  return (
    `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}` +
    `T${pad(moment.getHours())}:${pad(moment.getMinutes())}:${pad(moment.getSeconds())}`
  );
}

/** An instant as the reader reads time: "21 Nov 2026, 22:15:00" in their zone. */
export function instantLabel(instant) {
  if (!instant) return "–";
  const moment = new Date(instant);
  if (Number.isNaN(moment.getTime())) return instant;
  return (
    `${moment.getDate()} ${MONTH_NAMES[moment.getMonth()]} ${moment.getFullYear()}, ` +
    `${pad(moment.getHours())}:${pad(moment.getMinutes())}:${pad(moment.getSeconds())}`
  );
}

/** The reader's time zone, for saying which zone "known at" is in. */
export function zoneName() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
}

/** A wait in whole seconds as a person reads it: "45 s", "12 min", "3 h 05 min", "2 d 4 h". */
export function age(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  const hours = Math.floor(seconds / 3600);
  if (seconds < 3600) return `${minutes} min`;
  if (seconds < 86400) return `${hours} h ${pad(minutes % 60)} min`;
  return `${count(Math.floor(seconds / 86400))} d ${hours % 24} h`;
}

/** "deferred_revenue" -> "Deferred revenue". */
export function words(name) {
  const text = String(name).replace(/[_.]/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
