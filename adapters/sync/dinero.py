"""Dinero (Visma) as an accounting target (shared/reference/accounting-apis.md §2).

A personal integration: a token from the API-key password grant (cached, and renewed five
minutes before its hour ends, or at once if Dinero refuses it), then every call under
`/{version}/{organizationId}/`. Dinero lets us choose the Guids of contacts, invoices, credit
notes and ledger items, so ours are derived from our own ids (`uuid5`): a retry after a
timeout, a replay or a rebuild finds what the first try made instead of making it again.

- `contact`: found by the configured match field (`vat_number` through the `VatNumber eq`
  filter Dinero documents; `ean` and `email` by reading the contacts), else by our own
  `ContactGuid`, else by the customer number as the contact's `ExternalReference`; created with
  our `ContactGuid` (and the target's default payment terms, where it has some), or updated in
  place (a deleted one is restored first).
- `invoice`: a draft with our `Guid` (409 / code 72: it is there already, and a draft found so
  gets our lines again), with payment terms (`Netto`, days from our due date, else from the
  terms of the payment method in `payment_terms`, else the contact's own), its `TotalExclVat`
  and `TotalVat` read back and compared with ours, then booked with its current `TimeStamp`,
  e-mailed or sent to a public customer's EAN as configured (once: only while `MailOutStatus`
  is `NotSent`). Lines carry no VAT at Dinero: each is booked to the account `vat_accounts`
  names for its VAT rate, whose VAT code has it.
- `credit_note`: the same, under `/sales/creditnotes`, `CreditNoteFor` the invoice. Dinero
  computes each line's VAT itself; where ours differs (the credit that completes a line carries
  the VAT left on it, contract §2), a line on the VAT-free `rounding_account` makes the note's
  gross ours.
- `payment` / `refund`: a payment on the booked invoice (a refund is a negative one) into the
  deposit account of the method, with our payment or refund id as `ExternalReference`, looked
  for among the invoice's payments first. Outside DKK, `AmountInForeignCurrency` is ours and
  `Amount` is the kroner it makes: at the event's exchange rate, else at the rate Dinero
  applied to the invoice (its `TotalInclVatInDkk` over its `TotalInclVat`); never the foreign
  figure as kroner.
- `recognition`: a ledger item (a manual voucher whose `Id` we choose, `/v1.2/ledgeritems`)
  dated the month's last day, moving the month's revenue out of deferred revenue, with VAT
  code `none` on every line (the accounts' own codes would take VAT out of the amounts), then
  booked. Plain `/vouchers/manuel` takes no id of ours and cannot be listed, so an answer lost
  after Dinero made one would leave a second voucher behind; a ledger item cannot be made twice.

Whatever needs the latest `TimeStamp` (book, e-mail, payments) re-reads it and tries again when
Dinero answers code 58 (another change came first). Money goes out as exact decimals in
major units with the currency's own decimals, and comes back the same way.

Only documented lookups are used, and a record found through a list is used only if it is what
was looked for: a contact's field must equal the value it was looked up by, a payment's
`ExternalReference` our id.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

import httpx
import orjson

from subledger.adapters.sync.common import (
    BASE_CURRENCY,
    MessageSender,
    PaymentKind,
    TargetSettings,
    converted,
    credit_lines,
    decimal_rate,
    invoice_terms,
    major,
    minor,
    priced_lines,
    rate_of,
    vat_percent,
)
from subledger.adapters.sync.http import Budget, masked
from subledger.adapters.sync.port import RejectedError, RetryableError, TargetInvoice, Trace
from subledger.domain.chart import Chart
from subledger.domain.money import CURRENCY_EXPONENTS
from subledger.projections.messages import (
    ContactMessage,
    CreditedLine,
    CreditNoteMessage,
    InvoiceLine,
    InvoiceMessage,
    Payload,
    PaymentMessage,
    RecognitionMessage,
    RefundMessage,
)

DEFAULT_URL: Final = "https://api.dinero.dk"
DEFAULT_AUTH_URL: Final = "https://authz.dinero.dk/dineroapi/oauth/token"
AUTH_PATH: Final = "/dineroapi/oauth/token"
#: Renew a token when less than this is left of its life, in seconds.
RENEW_BEFORE: Final = 300.0
#: The namespace of the Guids derived from our ids.
GUIDS: Final = uuid.UUID("7f1f5c0e-5b0a-4c1e-9d3e-2a7c0b7e9d41")
#: How often a change is tried again after Dinero says its `TimeStamp` is stale (code 58).
STALE_RETRIES: Final = 3
PAGE_SIZE: Final = 1000
STALE: Final = 58
DUPLICATE: Final = 72
NO_VAT: Final = "none"


def guid(kind: str, ours: str) -> str:
    """The Guid Dinero keeps for our `kind` of thing with id `ours`."""
    return str(uuid.uuid5(GUIDS, f"{kind}:{ours}"))


def _code(error: RejectedError) -> Any:
    return error.body.get("code") if isinstance(error.body, dict) else None


def _explain(response: httpx.Response) -> str:
    """Dinero's error in its own words: the code, the message and each field's problem."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    parts = []
    if body.get("code") is not None:
        parts.append(f"code {body['code']}")
    if body.get("message"):
        parts.append(str(body["message"]))
    problems = body.get("validationErrors") or {}
    if isinstance(problems, dict):
        parts.extend(f"{name}: {text}" for name, text in problems.items())
    return "; ".join(parts) or str(body)[:200]


def _quoted(value: str) -> str:
    """A value inside a `queryFilter`, its quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


class DineroToken:
    """The organization's bearer token, shared by the target's workers: asked for with the
    API-key password grant, kept until `RENEW_BEFORE` seconds before it expires. The request
    is noted in the trace without its credentials."""

    def __init__(
        self,
        settings: TargetSettings,
        client: httpx.Client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.client = client
        self.clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def bearer(self, trace: Trace) -> str:
        with self._lock:
            if self._token is None or self.clock() >= self._renew_at:
                self._token, lifetime = self._ask(trace)
                self._renew_at = self.clock() + max(0.0, lifetime - RENEW_BEFORE)
            return self._token

    def forget(self, token: str) -> None:
        """Drop `token` (refused by Dinero before its time), unless a newer one replaced it."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _ask(self, trace: Trace) -> tuple[str, float]:
        key = self.settings.token
        form = {"grant_type": "password", "scope": "read write", "username": key, "password": key}
        started = time.perf_counter()
        line = f"POST {httpx.URL(self.settings.token_url).path}"
        try:
            response = self.client.post(
                self.settings.token_url,
                data=form,
                auth=(self.settings.client_id, self.settings.client_secret),
            )
        except httpx.TransportError as error:
            trace.requests.append(f"{line} → {type(error).__name__}")
            raise RetryableError(f"{line}: no token ({type(error).__name__})") from None
        elapsed = round((time.perf_counter() - started) * 1000)
        trace.requests.append(f"{line} → {response.status_code} ({elapsed} ms)")
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"{line}: {response.status_code}", response.status_code)
        body = _json_object(response)
        if response.status_code != 200 or not body.get("access_token"):
            reason = body.get("error_description") or body.get("error") or response.text[:200]
            reason = masked(str(reason), (key, self.settings.client_secret))
            raise RejectedError(
                f"Dinero refused the token request ({response.status_code}: {reason}): check"
                f" client_id, client_secret and the API key of [targets.{self.settings.name}]",
                response.status_code,
            )
        return str(body["access_token"]), float(body.get("expires_in") or 3600)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class DineroTarget(MessageSender):
    def __init__(
        self,
        settings: TargetSettings,
        chart: Chart,
        budget: Budget | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json"}
        super().__init__(settings, chart, headers, _explain, budget, transport)
        self.token = DineroToken(settings, self.http.client)
        self.organization = settings.organization_id
        #: Contact Guids by customer, and invoices' latest `TimeStamp` once booked.
        self._contacts: dict[str, str] = {}
        self._stamps: dict[str, str] = {}
        #: Our contacts found deleted at Dinero, to be restored before they are updated.
        self._deleted: set[str] = set()

    # Requests.

    def _call(
        self,
        trace: Trace,
        method: str,
        path: str,
        version: str = "v1",
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """A request under the organization, with a bearer token (asked for again, once, if
        Dinero refuses the one held before its time)."""
        url = f"/{version}/{self.organization}/{path}"
        for attempt in (1, 2):
            bearer = self.token.bearer(trace)
            try:
                return self.http.request(
                    trace, method, url, params, json, headers={"Authorization": f"Bearer {bearer}"}
                )
            except RejectedError as error:
                if error.status != 401 or attempt == 2:
                    raise
                self.token.forget(bearer)
        raise AssertionError("unreachable")

    def _create(self, trace: Trace, path: str, body: Any, version: str = "v1") -> bool:
        """Create what `body` describes with our own Guid: True if made now, False if Dinero
        holds it already (a 409, code 72, or `guidMustBeUnique`)."""
        try:
            self._call(trace, "POST", path, version, json=body)
            return True
        except RejectedError as error:
            if error.status == 409 or _code(error) == DUPLICATE or "guidMustBeUnique" in str(error):
                return False
            raise

    def _while_stale(
        self, stamp: str, reread: Callable[[], str], change: Callable[[str], Any]
    ) -> Any:
        """`change(stamp)`; after each code 58 (another change came first), again with the
        `TimeStamp` read anew."""
        for _ in range(STALE_RETRIES):
            try:
                return change(stamp)
            except RejectedError as error:
                if _code(error) != STALE:
                    raise
            stamp = reread()
        raise RetryableError("Dinero's TimeStamp kept changing under us (code 58): later")

    def _everything(self, trace: Trace, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every record of a list, a page of 1,000 at a time (pages count from 0)."""
        found: list[dict[str, Any]] = []
        page = 0
        while True:
            query = {**params, "page": page, "pageSize": PAGE_SIZE}
            body = self._call(trace, "GET", path, params=query)
            records = body.get("Collection") or []
            found += records
            if len(records) < PAGE_SIZE:
                return found
            page += 1

    # The port.

    def _forget(self, payload: Payload) -> None:
        if "customer" in payload:
            self._contacts.pop(self._contact_key(payload["customer"]), None)
        if "invoice_id" in payload:
            self._stamps.pop(guid("invoice", str(payload["invoice_id"])), None)

    def check(self, products: set[str] | None = None) -> list[str]:
        """The token, the organization, and each account the mapping names: the chart's, the
        payment methods' deposit accounts, `vat_accounts` with a VAT code of their rate and the
        VAT-free rounding account. (Dinero's lines name accounts, not products: `products` is
        not looked at.)"""
        trace = Trace()
        try:
            accounts = self._call(trace, "GET", "accounts/entry")
            deposit = self._call(trace, "GET", "accounts/deposit")
            vat_types = self._call(trace, "GET", "vatTypes")
        except RejectedError as error:
            return [f"{self.name}: {error}"]
        numbers = {str(a.get("AccountNumber")): a for a in accounts}
        deposits = {str(a.get("AccountNumber")) for a in deposit}
        rates = {str(v.get("VatCode")).lower(): Decimal(str(v.get("VatRate"))) for v in vat_types}
        problems = []
        banks = self.chart.accounts_of("bank")
        for ours in sorted(self.chart.accounts()):
            theirs = self._account_no(ours)
            if theirs not in numbers:
                problems.append(f"{self.name}: no account {theirs} (our {ours})")
            elif ours in banks and theirs not in deposits:
                problems.append(
                    f"{self.name}: account {theirs} (our bank account {ours}) is no deposit"
                    " account: payments cannot go to it"
                )
        mapping = f"under [targets.{self.name}.vat_accounts]"
        wanted = [(percent, theirs, mapping) for percent, theirs in self._vat_accounts().items()]
        wanted.append(("0", self.settings.rounding_account, "as rounding_account"))
        for percent, theirs, where in sorted(wanted):
            account = numbers.get(theirs)
            if account is None:
                problems.append(f"{self.name}: no account {theirs} (for lines at {percent}% VAT)")
                continue
            code = str(account.get("VatCode") or NO_VAT)
            rate = rates.get(code.lower())
            has = None if rate is None else vat_percent(str(rate))
            if has != percent:
                problems.append(
                    f"{self.name}: account {theirs} has VAT code {code!r}"
                    f" ({'unknown' if has is None else has + '%'}), but lines at {percent}% VAT"
                    f" are booked to it: map an account of that rate {where}"
                )
        return problems

    def invoices(self) -> list[TargetInvoice]:
        """Every invoice and credit note, by our number (`ExternalReference`), in its own
        currency. What was paid is read off the booked entries for kroner invoices (payments
        off the receivables account, by the invoice's number: a request per accounting year
        rather than one per invoice), and off each foreign-currency invoice's own payments."""
        trace = Trace()
        fields = "Guid,Number,ExternalReference,Date,Currency,TotalInclVat,Status,PaymentStatus"
        invoices = self._everything(trace, "invoices", fields=fields)
        notes = self._everything(
            trace, "sales/creditnotes", fields=fields.replace("PaymentStatus", "CreditNoteFor")
        )
        credited: dict[str, int] = {}
        for note in notes:
            if note.get("Status") == "Booked" and note.get("CreditNoteFor"):
                key = str(note["CreditNoteFor"]).lower()
                credited[key] = credited.get(key, 0) + minor(
                    note.get("TotalInclVat"), _currency(note)
                )
        paid = self._paid_by_number(trace, [*invoices, *notes])
        held = []
        for invoice in invoices:
            currency = _currency(invoice)
            gross = minor(invoice.get("TotalInclVat"), currency)
            booked = invoice.get("Status") == "Booked"
            if currency != BASE_CURRENCY and booked:
                money_in = self._paid_in_currency(trace, str(invoice["Guid"]), currency)
            else:
                number = invoice.get("Number")
                money_in = paid.get(str(number), 0) if number else 0
            credit = credited.get(str(invoice.get("Guid")).lower(), 0)
            held.append(
                TargetInvoice(
                    number=str(invoice.get("ExternalReference") or invoice.get("Number")),
                    kind="invoice",
                    gross=gross,
                    balance=gross - credit - money_in if booked else 0,
                    state=str(invoice.get("PaymentStatus") or invoice.get("Status")),
                    paid=money_in,
                )
            )
        for note in notes:
            held.append(
                TargetInvoice(
                    number=str(note.get("ExternalReference") or note.get("Number")),
                    kind="credit_note",
                    gross=minor(note.get("TotalInclVat"), _currency(note)),
                    balance=0,
                    state=str(note.get("Status")),
                    paid=0,
                )
            )
        return held

    def _paid_in_currency(self, trace: Trace, key: str, currency: str) -> int:
        """What the payments of a foreign-currency invoice brought in, in its own currency."""
        held = self._call(trace, "GET", f"invoices/{key}/payments", "v2")
        return sum(
            minor(p.get("AmountInForeignCurrency"), currency) for p in held.get("Payments") or []
        )

    def _paid_by_number(self, trace: Trace, documents: list[dict[str, Any]]) -> dict[str, int]:
        days = [date.fromisoformat(str(d["Date"])) for d in documents if d.get("Date")]
        if not days:
            return {}
        receivable = self._account_no(self.chart.account("receivable"))
        paid: dict[str, int] = {}
        for year in range(min(days).year, max(max(days).year, datetime.now(UTC).year) + 1):
            entries = self._call(
                trace,
                "GET",
                "entries",
                params={
                    "fromDate": f"{year}-01-01",
                    "toDate": f"{year}-12-31",
                    "includePrimo": "false",
                },
            )
            for entry in entries:
                if (
                    entry.get("VoucherType") == "InvoicePayment"
                    and str(entry.get("AccountNumber")) == receivable
                ):
                    number = str(entry.get("VoucherNumber"))
                    amount = minor(entry.get("Amount"), BASE_CURRENCY)
                    paid[number] = paid.get(number, 0) - amount
        return paid

    # Mapping.

    def _account_no(self, ours: str) -> str:
        return self.settings.accounts.get(ours, ours)

    def _vat_accounts(self) -> dict[str, str]:
        """VAT rate in percent → the account lines of that rate are booked to: by default,
        25% to deferred revenue (as products at Billy book to it)."""
        deferred = self._account_no(self.chart.account("deferred_revenue"))
        return {"25": deferred, **self.settings.vat_accounts}

    def _line_account(self, line: InvoiceLine | CreditedLine) -> int:
        percent = vat_percent(line["vat_rate"])
        account = self._vat_accounts().get(percent)
        if account is None:
            raise RejectedError(
                f"no Dinero account for lines at {percent}% VAT: map one (an account whose VAT"
                f" code is {percent}%) under [targets.{self.name}.vat_accounts]"
            )
        return int(account)

    # Contacts.

    def _contact_key(self, customer: ContactMessage) -> str:
        return orjson.dumps([customer["customer_id"], self._match_value(customer)]).decode()

    def _match_value(self, customer: ContactMessage) -> tuple[str, str] | None:
        """The contact field the configured match looks at, and the customer's value of it."""
        fields = {
            "vat_number": ("VatNumber", customer.get("vat_number")),
            "ean": ("EanNumber", customer.get("ean")),
            "email": ("Email", customer.get("email")),
        }
        field, value = fields.get(self.settings.match, ("", None))
        return (field, str(value)) if value else None

    def _find_contact(self, trace: Trace, customer: ContactMessage) -> str | None:
        """The customer's contact: by the configured match field, else our own Guid, else
        the customer number as `ExternalReference`; each verified against what it was found
        by, deleted contacts aside."""
        found = None
        matched = self._match_value(customer)
        if matched is not None:
            found = self._contact_with(trace, *matched)
        if found is None:
            ours = guid("contact", customer["customer_id"])
            try:
                if _field(self._call(trace, "GET", f"contacts/{ours}"), "DeletedAt"):
                    self._deleted.add(ours)
                found = ours
            except RejectedError as error:
                if error.status != 404:
                    raise
        if found is None:
            number = str(customer.get("customer_number") or customer["customer_id"])
            found = self._contact_with(trace, "ExternalReference", number)
        if found is not None:
            self._contacts[self._contact_key(customer)] = found
        return found

    def _contact_with(self, trace: Trace, field: str, value: str) -> str | None:
        """The Guid of a contact (not deleted) whose `field` is `value` (e-mails compared
        without regard to case): through the `VatNumber eq` filter Dinero documents, else by
        reading the contacts."""
        fields = f"ContactGuid,{field},DeletedAt"
        params: dict[str, Any] = {"fields": fields}
        if field == "VatNumber":
            params["queryFilter"] = f"VatNumber eq {_quoted(value)}"
        fold = str.casefold if field == "Email" else str
        for contact in self._everything(trace, "contacts", **params):
            theirs = _field(contact, field)
            matches = theirs is not None and fold(str(theirs)) == fold(value)
            if matches and not _field(contact, "DeletedAt"):
                return str(_field(contact, "ContactGuid"))
        return None

    def _contact(self, trace: Trace, customer: ContactMessage) -> str:
        address = customer.get("address")
        fields = {
            "Name": customer.get("name") or customer["customer_id"],
            "CountryKey": customer.get("country") or "DK",
            "IsPerson": customer.get("kind") == "person",
            "IsMember": False,
            "UseCvr": bool(customer.get("vat_number")),
            "ExternalReference": str(customer.get("customer_number") or customer["customer_id"]),
            "VatNumber": customer.get("vat_number"),
            "EanNumber": customer.get("ean"),
            "Email": customer.get("email"),
            "Street": address["street"] if address else None,
            "ZipCode": address["zip"] if address else None,
            "City": address["city"] if address else None,
        }
        fields = {name: value for name, value in fields.items() if value is not None}
        existing = self._find_contact(trace, customer)
        if existing is None:
            ours = guid("contact", customer["customer_id"])
            terms = {}
            if "default" in self.settings.payment_terms:
                terms = {
                    "PaymentConditionType": "Netto",
                    "PaymentConditionNumberOfDays": self.settings.payment_terms["default"],
                }
            if self._create(trace, "contacts", {**fields, **terms, "ContactGuid": ours}):
                self._contacts[self._contact_key(customer)] = ours
                return ours
            existing = ours
            if _field(self._call(trace, "GET", f"contacts/{ours}"), "DeletedAt"):
                self._deleted.add(ours)
        if existing in self._deleted:
            self._call(trace, "POST", f"contacts/{existing}/restore")
            self._deleted.discard(existing)
        self._call(trace, "PUT", f"contacts/{existing}", json=fields)
        self._contacts[self._contact_key(customer)] = existing
        return existing

    def _contact_of(self, trace: Trace, customer: ContactMessage) -> str:
        """The customer's contact: remembered from its contact message, else looked up."""
        found = self._contacts.get(self._contact_key(customer)) or self._find_contact(
            trace, customer
        )
        if found is None:
            raise RejectedError(
                f"Dinero has no contact for customer {customer['customer_id']!r}: its contact"
                " message must be sent first"
            )
        return found

    def _terms(self, trace: Trace, payload: InvoiceMessage, contact: str) -> dict[str, Any]:
        """The invoice's payment condition: ours where we have one, else the contact's (which
        Dinero would also apply to an invoice that names none)."""
        terms = invoice_terms(payload, self.settings.payment_terms)
        if terms is not None:
            return {"PaymentConditionType": "Netto", "PaymentConditionNumberOfDays": terms.days}
        record = self._call(trace, "GET", f"contacts/{contact}")
        kind = _field(record, "PaymentConditionType")
        if not kind:
            return {}
        return {
            "PaymentConditionType": kind,
            "PaymentConditionNumberOfDays": _field(record, "PaymentConditionNumberOfDays"),
        }

    # Invoices and credit notes.

    def _lines(
        self, lines: Sequence[InvoiceLine | CreditedLine], currency: str
    ) -> list[dict[str, Any]]:
        return [
            {
                "LineType": "Product",
                "Description": priced.description,
                "Quantity": priced.quantity,
                "BaseAmountValue": major(priced.unit, currency),
                "AccountNumber": self._line_account(priced.line),
                "Unit": "parts",
            }
            for priced in priced_lines(lines, currency)
        ]

    def _document(
        self,
        trace: Trace,
        payload: InvoiceMessage | CreditNoteMessage,
        path: str,
        key: str,
        fields: dict[str, Any],
        lines: list[dict[str, Any]],
        expected: tuple[int, int],
    ) -> dict[str, Any]:
        """Create (or find) the invoice or credit note with Guid `key` under `path` with
        `lines`, make sure Dinero's net and VAT are `expected`, and book it if configured;
        Dinero's record."""
        number = str(payload["number"])
        currency = payload["currency"]
        body = {
            "Guid": key,
            "Date": payload["issue_date"],
            "Currency": currency,
            "ExternalReference": number,
            "Description": number,
            "ProductLines": lines,
            **fields,
        }
        created = self._create(trace, path, body)
        record = self._call(trace, "GET", f"{path}/{key}")

        def reread() -> str:
            nonlocal record
            record = self._call(trace, "GET", f"{path}/{key}")
            return str(record["TimeStamp"])

        if not created and record.get("Status") == "Draft" and path == "invoices":
            # Found on a retry: our lines again, in case the mapping was fixed since.
            changes = {name: value for name, value in body.items() if name != "Guid"}
            self._while_stale(
                str(record["TimeStamp"]),
                reread,
                lambda stamp: self._call(
                    trace, "PUT", f"invoices/{key}", "v1.2", json={**changes, "Timestamp": stamp}
                ),
            )
            reread()
        theirs = (
            minor(record.get("TotalExclVat"), currency),
            minor(record.get("TotalVat"), currency),
        )
        if theirs != expected:
            raise RejectedError(
                f"Dinero's totals of {number} differ from ours: net {theirs[0]} and VAT"
                f" {theirs[1]} there, net {expected[0]} and VAT {expected[1]} expected"
                f" (check the VAT codes of the accounts in [targets.{self.name}.vat_accounts])"
            )
        if self.settings.book and record.get("Status") == "Draft":
            record = self._while_stale(
                str(record["TimeStamp"]),
                reread,
                lambda stamp: self._call(
                    trace, "POST", f"{path}/{key}/book", json={"Timestamp": stamp}
                ),
            )
        return dict(record)

    def _invoice(self, trace: Trace, payload: InvoiceMessage) -> dict[str, Any]:
        customer = payload["customer"]
        contact = self._contact_of(trace, customer)
        key = guid("invoice", str(payload["invoice_id"]))
        fields = {"ContactGuid": contact, **self._terms(trace, payload, contact)}
        lines = self._lines(payload["lines"], payload["currency"])
        expected = (payload["net"], payload["vat"])
        record = self._document(trace, payload, "invoices", key, fields, lines, expected)
        if record.get("Status") == "Booked":
            self._stamps[key] = str(record["TimeStamp"])
            if record.get("MailOutStatus", "NotSent") == "NotSent":
                self._deliver(trace, key, customer)
        return {"invoice": key, "contact": contact, "number": record.get("Number")}

    def _deliver(self, trace: Trace, key: str, customer: ContactMessage) -> None:
        """E-invoice to a public customer's EAN, or e-mail to the customer, as configured."""
        if self.settings.e_invoice and customer.get("kind") == "public" and customer.get("ean"):
            path, version = f"invoices/{key}/with-ean", "v2"
            body: dict[str, Any] = {"ReceiverEanNumber": customer["ean"]}
        elif self.settings.email and customer.get("email"):
            path, version = f"invoices/{key}/email", "v1"
            body = {"ShouldAddTrustPilotEmailAsBcc": False, "Receiver": customer["email"]}
        else:
            return
        self._while_stale(
            self._stamps.pop(key),
            lambda: str(self._booked_invoice(trace, key)["TimeStamp"]),
            lambda stamp: self._call(
                trace, "POST", path, version, json={**body, "Timestamp": stamp}
            ),
        )

    def _booked_invoice(self, trace: Trace, key: str) -> dict[str, Any]:
        record: dict[str, Any] = self._call(trace, "GET", f"invoices/{key}")
        if record.get("Status") != "Booked":
            raise RejectedError(
                f"Dinero's invoice {record.get('ExternalReference') or key} is not booked"
                " (payments and credit notes need booked invoices: set book = true)"
            )
        return record

    def _credit_note(self, trace: Trace, payload: CreditNoteMessage) -> dict[str, Any]:
        currency = payload["currency"]
        contact = self._contact_of(trace, payload["customer"])
        invoice = guid("invoice", str(payload["invoice_id"]))
        key = guid("credit_note", str(payload["credit_note_id"]))
        fields = {"ContactGuid": contact, "CreditNoteFor": invoice}
        credit = credit_lines(payload["lines"])
        lines = self._lines(credit.lines, currency)
        if credit.rounding:
            lines.append(
                {
                    "LineType": "Product",
                    "Description": "Øreafrunding",
                    "Quantity": Decimal(1),
                    "BaseAmountValue": major(credit.rounding, currency),
                    "AccountNumber": int(self.settings.rounding_account),
                    "Unit": "parts",
                }
            )
        expected = (credit.net, credit.vat)
        record = self._document(trace, payload, "sales/creditnotes", key, fields, lines, expected)
        self._stamps.pop(invoice, None)
        return {"credit_note": key, "invoice": invoice, "number": record.get("Number")}

    # Payments, refunds and ledger items.

    def _payment(
        self, trace: Trace, payload: PaymentMessage | RefundMessage, kind: PaymentKind
    ) -> dict[str, Any]:
        invoice = guid("invoice", str(payload["invoice_id"]))
        reference = str(payload["refund_id"] if "refund_id" in payload else payload["payment_id"])
        held = self._call(trace, "GET", f"invoices/{invoice}/payments", "v2")
        for payment in held.get("Payments") or []:
            if payment.get("ExternalReference") == reference:
                return {kind: payment.get("Id"), "invoice": invoice}
        record = self._booked_invoice(trace, invoice)
        currency = payload["currency"]
        sign = 1 if kind == "payment" else -1
        body: dict[str, Any] = {
            "DepositAccountNumber": int(
                self._account_no(self.chart.account("bank", payload["method"]))
            ),
            "Description": f"{kind.capitalize()} {reference}",
            "RemainderIsFee": False,
            "PaymentDate": payload["date"],
            "ExternalReference": reference,
        }
        if currency == BASE_CURRENCY:
            body["Amount"] = major(sign * payload["amount"], currency)
        else:
            kroner = self._in_kroner(payload, record)
            body["Amount"] = major(sign * kroner, BASE_CURRENCY)
            body["AmountInForeignCurrency"] = major(sign * payload["amount"], currency)
        stamp = self._stamps.pop(invoice, None) or str(record["TimeStamp"])
        self._while_stale(
            stamp,
            lambda: str(self._booked_invoice(trace, invoice)["TimeStamp"]),
            lambda fresh: self._call(
                trace, "POST", f"invoices/{invoice}/payments", json={**body, "Timestamp": fresh}
            ),
        )
        return {kind: reference, "invoice": invoice}

    def _in_kroner(self, payload: PaymentMessage | RefundMessage, invoice: dict[str, Any]) -> int:
        """A foreign-currency payment's kroner (in øre): at the event's exchange rate, else at
        the rate Dinero applied to the invoice (its total in kroner over its total)."""
        currency = payload["currency"]
        rate = rate_of(payload.get("exchange_rate"))
        if rate is None:
            total = minor(invoice.get("TotalInclVat"), currency)
            in_kroner = invoice.get("TotalInclVatInDkk")
            if total and in_kroner is not None:
                kroner = minor(in_kroner, BASE_CURRENCY)
                return converted(
                    payload["amount"], currency, _per_unit(kroner, total, currency), BASE_CURRENCY
                )
            raise RejectedError(
                f"no exchange rate for the {currency} payment"
                f" {payload['payment_id']}: Dinero shows no kroner"
                " total for its invoice, and the event gives no exchange_rate"
            )
        return converted(payload["amount"], currency, rate, BASE_CURRENCY)

    def _recognition(
        self, trace: Trace, payload: RecognitionMessage, source: str
    ) -> dict[str, Any]:
        key = guid("recognition", source)
        item = {
            "Id": key,
            "VoucherDate": payload["date"],
            "Lines": self._voucher_lines(trace, payload, source),
        }
        self._create(trace, "ledgeritems", [item], "v1.2")
        if not self.settings.book:
            return {"ledger_item": key}

        def status() -> dict[str, Any]:
            found = self._call(trace, "POST", "ledgeritems/status", json=[{"Id": key}])
            if not found:
                raise RetryableError(f"Dinero does not list ledger item {key} yet")
            return dict(found[0])

        state = status()
        if state.get("Status") == "Draft":
            self._while_stale(
                str(state["Version"]),
                lambda: str(status()["Version"]),
                lambda version: self._call(
                    trace, "POST", "ledgeritems/book", json=[{"Id": key, "Version": version}]
                ),
            )
        return {"ledger_item": key}

    def _voucher_lines(
        self, trace: Trace, payload: RecognitionMessage, source: str
    ) -> list[dict[str, Any]]:
        """The voucher's lines as Dinero's ledger items take them: each revenue account's line
        against deferred revenue as its balancing account (a positive `Amount` debits the
        account and credits the balancing one), VAT code `none` on both sides, in kroner (a
        ledger item has no currency). The voucher's deferred-revenue lines are those
        balancing sides, so they must add up to them."""
        reference = f"subledger:recognition:{source}"
        deferred = self.chart.account("deferred_revenue")
        lines: list[dict[str, Any]] = []
        balance: dict[str, int] = {}
        for line in payload["lines"]:
            debit = line["amount"] if line["side"] == "debit" else -line["amount"]
            currency = line["currency"]
            balance[currency] = balance.get(currency, 0) + debit
            if line["account"] == deferred:
                continue
            text = f"Recognized revenue {payload['month']}, {currency}"
            kroner = debit
            if currency != BASE_CURRENCY:
                rate = self._rate_of_the_day(trace, currency, payload["date"])
                kroner = converted(debit, currency, rate, BASE_CURRENCY)
                text += f" {major(debit, currency)} at {decimal_rate(rate)}"
            lines.append(
                {
                    "AccountNumber": int(self._account_no(line["account"])),
                    "BalancingAccountNumber": int(self._account_no(deferred)),
                    "Amount": major(kroner, BASE_CURRENCY),
                    "Description": f"{text} ({reference})",
                    "AccountVatCode": NO_VAT,
                    "BalancingAccountVatCode": NO_VAT,
                }
            )
        if any(balance.values()):
            raise RejectedError(f"the recognition voucher of {payload['month']} does not balance")
        return lines

    def _rate_of_the_day(self, trace: Trace, currency: str, day: str) -> Fraction:
        """Kroner per unit of `currency` as Dinero converted it on `day`, or as near before it
        as it did (else the nearest after): the rate of its invoice in that currency dated
        closest to `day` (`TotalInclVatInDkk` over `TotalInclVat`). Dinero's API offers no
        rates of its own; its invoices show the ones it applied. The invoices of `day`'s month
        are read first (Dinero's `startDate`/`endDate`), then of the year before it, then all."""
        last = date.fromisoformat(day)
        windows: list[tuple[date, date] | None] = [
            (last.replace(day=1), last),
            (last - timedelta(days=366), last),
            None,
        ]
        for window in windows:
            dated = self._rates_dated(trace, currency, window)
            before = [entry for entry in dated if entry[0] <= day]
            if before:
                return max(before)[1]
            if window is None and dated:
                return min(dated)[1]
        raise RetryableError(
            f"Dinero shows no invoice in {currency} yet, whose rate the {currency} lines of"
            " this voucher would be converted at: later"
        )

    def _rates_dated(
        self, trace: Trace, currency: str, window: tuple[date, date] | None
    ) -> list[tuple[str, Fraction]]:
        """(date, rate) of Dinero's invoices in `currency` dated within `window` (checked here
        too, whatever the list answered), or of all of them."""
        params: dict[str, Any] = {"fields": "Guid,Date,Currency,TotalInclVat,TotalInclVatInDkk"}
        if window is not None:
            params |= {"startDate": window[0].isoformat(), "endDate": window[1].isoformat()}
        dated = []
        for invoice in self._everything(trace, "invoices", **params):
            day = str(_field(invoice, "Date"))[:10]
            inside = window is None or window[0].isoformat() <= day <= window[1].isoformat()
            if _currency(invoice) != currency or not inside:
                continue
            total = minor(_field(invoice, "TotalInclVat"), currency)
            in_kroner = _field(invoice, "TotalInclVatInDkk")
            if total and in_kroner is not None:
                dated.append((day, _per_unit(minor(in_kroner, BASE_CURRENCY), total, currency)))
        return dated


def _field(record: dict[str, Any], name: str) -> Any:
    """A field of a Dinero record, whatever the casing it is answered in."""
    if name in record:
        return record[name]
    lowered = name.lower()
    return next((value for key, value in record.items() if key.lower() == lowered), None)


def _currency(document: dict[str, Any]) -> str:
    return str(document.get("Currency") or BASE_CURRENCY)


def _per_unit(kroner: int, total: int, currency: str) -> Fraction:
    """The rate (kroner per unit of `currency`) that makes `total` (minor units of
    `currency`) into `kroner` øre."""
    shift = CURRENCY_EXPONENTS[currency] - CURRENCY_EXPONENTS[BASE_CURRENCY]
    return Fraction(kroner, total) * Fraction(10) ** shift
