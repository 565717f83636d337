"""Dinero (Visma) as an accounting target (docs/reference/dinero.md).

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
  the VAT left on it, docs/specification.md §2), a line on the VAT-free `rounding_account` makes
  the note's
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

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from subledger.adapters.sync.common import BASE_CURRENCY, minor, vat_percent

# The `as` imports: names the composition and tests import from here.
from subledger.adapters.sync.dinero_client import DEFAULT_URL as DEFAULT_URL
from subledger.adapters.sync.dinero_client import NO_VAT, _currency, guid
from subledger.adapters.sync.dinero_payments import DineroPayments
from subledger.adapters.sync.dinero_recognition import DineroRecognition
from subledger.adapters.sync.dinero_token import AUTH_PATH as AUTH_PATH
from subledger.adapters.sync.dinero_token import DEFAULT_AUTH_URL as DEFAULT_AUTH_URL
from subledger.adapters.sync.dinero_token import RENEW_BEFORE_SECONDS as RENEW_BEFORE_SECONDS
from subledger.adapters.sync.dinero_token import DineroToken as DineroToken
from subledger.adapters.sync.port import RejectedError, TargetInvoice, Trace
from subledger.projections.messages import Payload


class DineroTarget(DineroRecognition, DineroPayments):
    """Dinero as a target: its contacts (`dinero_contacts`), invoices and credit notes
    (`dinero_documents`), payments (`dinero_payments`) and ledger items
    (`dinero_recognition`), over its API (`dinero_client`, `dinero_token`)."""

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
