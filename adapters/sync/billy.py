"""Billy (API v2) as an accounting target (docs/sync.md; Billy's facts in
docs/reference/billy.md).

What each message makes at Billy, found first by our own reference so that a retry after a
timeout, a replay or a rebuild never creates anything twice:

- `contact`: a contact, found by the configured match field (`contactNo` = our customer number,
  or our customer id; `registrationNo` = VAT number; `ean`; or a contact person's e-mail), else
  by `contactNo`; created (with the target's default payment terms, which Billy requires), or
  updated in place. The e-mail becomes its primary contact person.
- `invoice`: an invoice numbered with our number (`invoiceNo` is unique at Billy, so it is the
  reference), always with payment terms (`net`, days from our due date, else from the terms of
  the payment method in `payment_terms`, else the contact's own), and the event's exchange rate
  where it gave one; created as a draft, read back and its net and VAT compared with ours,
  then approved (`book`), e-mailed to the contact person (`email`), or sent as an e-invoice to
  a public customer's EAN (`e_invoice`), each as set for the customer's kind (`kinds`), else
  for the target. A draft found on a retry gets our lines again before the check, so a mapping
  fixed after a totals mismatch completes it. Billy computes a line's VAT from its product's
  sales tax ruleset, so each line goes to the product of ours at the line's VAT rate: the one
  numbered as ours (or as `products` maps it) when its ruleset gives that rate, else its twin
  numbered `<number>@<percent>` (`PRO@0`), else what `products` maps `<ours>@<percent>` to;
  with `create_products` a missing one is made once, booking to deferred revenue.
- `credit_note`: a credit note (`type: creditNote`) against the invoice, the same way, at the
  invoice's exchange rate unless the event gave one. Billy computes each line's VAT itself; where
  ours differs (the credit that completes a line carries the VAT left on it, docs/specification.md
  §2), a
  VAT-free line of the `rounding_product` makes the note's gross ours (`credit_lines`).
- `payment` / `refund`: a bank payment on the invoice, money in (`debit`) or out (`credit`), to
  the cash account of the payment method, in that account's currency: a foreign-currency
  invoice's payment into a kroner account is sent in kroner at the event's exchange rate, else
  at the rate Billy applied to the invoice, with that rate as `cashExchangeRate`. Billy keeps no
  reference of ours on a payment: the payments already on the invoice are read the way Billy
  documents (the invoice's balance modifiers), and the n-th with the same date, side and amount
  is the n-th such message.
- `recognition`: a daybook transaction (a voucher) whose `apiType` is our reference, with the
  month's lines by account number.

Only the list filters Billy documents are used, and every record found through one is used only
if it is what was looked for (the same number, reference or e-mail): a service that ignores a
filter answers its whole list, and the adapter pages on instead of taking the first record.
Accounts and products are read once for the process's life; the ids of contacts and approved
invoices found or made are remembered too, and a message that fails forgets those it used.
"""

from __future__ import annotations

from subledger.adapters.sync.billy_client import _text
from subledger.adapters.sync.billy_payments import BillyPayments

# The `as` import: a name tests import from here.
from subledger.adapters.sync.billy_payments import _settling as _settling
from subledger.adapters.sync.common import minor
from subledger.adapters.sync.port import RejectedError, TargetInvoice, Trace
from subledger.projections.messages import Payload


class BillyTarget(BillyPayments):
    """Billy as a target: its contacts (`billy_contacts`), invoices and credit notes
    (`billy_documents`), payments and vouchers (`billy_payments`), over its API
    (`billy_client`)."""

    # The port.

    def check(self, products: set[str] | None = None) -> list[str]:
        trace = Trace()
        problems = []
        try:
            self._base_currency(trace)
        except RejectedError as error:
            return [f"{self.name}: the token is refused: {error}"]
        deferred = self._account_no(self.chart.account("deferred_revenue"))
        deferred_record = self._account(trace, deferred)
        banks = self.chart.accounts_of("bank")
        for number in sorted(self.chart.accounts()):
            theirs = self._account_no(number)
            account = self._account(trace, theirs)
            if account is None:
                problems.append(f"{self.name}: no account {theirs} (our {number})")
            elif number in banks and not account.get("isPaymentEnabled"):
                problems.append(
                    f"{self.name}: account {theirs} (our bank account {number}) does not take"
                    " payments (isPaymentEnabled is false)"
                )
        for product in sorted((products or set()) | set(self.settings.products)):
            number = self.settings.products.get(product, product)
            found = self._product(trace, number)
            if found is None:
                if not self.settings.create_products:  # else made on first use
                    problems.append(
                        f"{self.name}: no product numbered {number!r} (our {product!r})"
                    )
            elif deferred_record is not None and found.get("accountId") != deferred_record["id"]:
                problems.append(
                    f"{self.name}: product {number!r} books to another account than deferred"
                    f" revenue ({deferred}); monthly recognition vouchers assume it does not"
                )
        if self._product(trace, self.settings.rounding_product) is None:
            problems.append(
                f"{self.name}: no product numbered {self.settings.rounding_product!r} for the"
                " rounding lines of credit notes (VAT-free, booking to øreafrunding): make one"
                f" or name yours as rounding_product under [targets.{self.name}]"
            )
        return problems

    def invoices(self) -> list[TargetInvoice]:
        """Every invoice and credit note, with what its payments settled in its own currency
        (read off its balance modifiers, the direction off each bank payment)."""
        trace = Trace()
        invoices = list(self._pages(trace, "invoices"))
        currency_of = {str(i["id"]): str(i.get("currencyId")) for i in invoices}
        sides = {
            str(p["id"]): p.get("cashSide")
            for p in self._pages(trace, "bankPayments")
            if not p.get("isVoided")
        }
        paid: dict[str, int] = {}
        for modifier in self._pages(trace, "balanceModifiers"):
            subject = _text(modifier.get("subjectReference"))
            payment = _text(modifier.get("modifierReference")).removeprefix("bankPayment:")
            subject_id = subject.removeprefix("invoice:")
            if modifier.get("isVoided") or payment not in sides or subject_id not in currency_of:
                continue
            amount = abs(minor(modifier.get("amount"), currency_of[subject_id]))
            sign = 1 if sides[payment] == "debit" else -1
            paid[subject_id] = paid.get(subject_id, 0) + sign * amount
        held = []
        for record in invoices:
            currency = currency_of[str(record["id"])]
            held.append(
                TargetInvoice(
                    number=_text(record.get("invoiceNo")),
                    kind="credit_note" if record.get("type") == "creditNote" else "invoice",
                    gross=minor(record.get("amount"), currency)
                    + minor(record.get("tax"), currency),
                    balance=minor(record.get("balance"), currency),
                    state=str(record.get("state")),
                    paid=paid.get(str(record["id"]), 0),
                )
            )
        return held

    def _forget(self, payload: Payload) -> None:
        """Drop what was remembered about a message's contact and invoices, so that its next
        attempt looks them up afresh (in case they were changed or deleted at Billy)."""
        if "customer" in payload:
            self._ids.pop(("contact", self._contact_key(payload["customer"])), None)
        if "number" in payload:
            self._ids.pop(("invoice", str(payload["number"])), None)
        if "invoice_number" in payload:
            self._ids.pop(("invoice", str(payload["invoice_number"])), None)
