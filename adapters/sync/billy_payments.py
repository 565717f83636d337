"""Billy's bank payments on an invoice (payments and refunds) and daybook transactions
(recognition vouchers), as the Billy adapter (`adapters.sync.billy`) finds and makes them; and
the bank payments standing on our invoices, which the payments pull reads (`payments`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from subledger.adapters.sync.billy_client import Record, _text
from subledger.adapters.sync.billy_documents import BillyDocuments
from subledger.adapters.sync.common import (
    PaymentKind,
    converted,
    decimal_rate,
    major,
    minor,
    rate_of,
)
from subledger.adapters.sync.port import RejectedError, SentInvoice, TargetPayment, Trace
from subledger.adapters.sync.pulled import RatedPayment, pulled_reference, recorded_rate
from subledger.projections.messages import PaymentMessage, RecognitionMessage, RefundMessage


class BillyPayments(BillyDocuments):
    # Payments, refunds and vouchers.

    def _modifiers(self, trace: Trace, invoice: Record) -> list[Record]:
        """The invoice's balance modifiers: embedded in it, or read off Billy's list of them
        where a service does not embed them (only those whose subject is the invoice)."""
        if isinstance(invoice.get("balanceModifiers"), list):
            return list(invoice["balanceModifiers"])
        subject = f"invoice:{invoice['id']}"
        return [
            modifier
            for modifier in self._pages(trace, "balanceModifiers")
            if _text(modifier.get("subjectReference")) == subject
        ]

    def _payments_on(self, trace: Trace, invoice: Record) -> Iterator[tuple[str, Record, int]]:
        """The bank payments on the invoice that stand, with what each settled of it (in the
        invoice's currency, as its balance modifier says)."""
        currency = str(invoice.get("currencyId"))
        for modifier in self._modifiers(trace, invoice):
            reference = _text(modifier.get("modifierReference"))
            if modifier.get("isVoided") or not reference.startswith("bankPayment:"):
                continue
            payment_id = reference.removeprefix("bankPayment:")
            payment = self.http.request(trace, "GET", f"/bankPayments/{payment_id}")
            payment = payment["bankPayment"]
            if payment.get("isVoided"):
                continue
            yield payment_id, payment, abs(minor(modifier.get("amount"), currency))

    def payments(self, invoices: Sequence[SentInvoice]) -> dict[str, list[TargetPayment]]:
        """The bank payments standing on `invoices` (by our number, `invoiceNo`), each with
        what it settled of its invoice as the invoice's balance modifier says: read off Billy's
        lists of invoices, bank payments and balance modifiers (a few requests, whatever the
        number of invoices)."""
        trace = Trace()
        wanted = {invoice.number: invoice for invoice in invoices}
        held: dict[str, tuple[SentInvoice, str]] = {}
        for record in self._pages(trace, "invoices"):
            ours = wanted.get(_text(record.get("invoiceNo")))
            if ours is not None and record.get("type") != "creditNote":
                held[str(record["id"])] = (ours, str(record.get("currencyId") or ours.currency))
        standing = {
            str(payment["id"]): payment
            for payment in self._pages(trace, "bankPayments")
            if not payment.get("isVoided")
        }
        found: dict[str, list[TargetPayment]] = {ours.invoice_id: [] for ours, _ in held.values()}
        for modifier in self._pages(trace, "balanceModifiers"):
            subject = _text(modifier.get("subjectReference")).removeprefix("invoice:")
            reference = _text(modifier.get("modifierReference"))
            payment = standing.get(reference.removeprefix("bankPayment:"))
            if (
                subject not in held
                or modifier.get("isVoided")
                or not reference.startswith("bankPayment:")
                or payment is None
            ):
                continue
            ours, currency = held[subject]
            account = self._account_number_of(trace, _text(payment.get("cashAccountId")))
            found[ours.invoice_id].append(
                RatedPayment(
                    reference=str(payment["id"]),
                    side="in" if payment.get("cashSide") == "debit" else "out",
                    amount=abs(minor(modifier.get("amount"), currency)),
                    day=_text(payment.get("entryDate")),
                    account=account,
                    exchange_rate=self._recorded_rate(trace, payment, account, currency),
                )
            )
        return found

    def _recorded_rate(
        self, trace: Trace, payment: Record, account: str, currency: str
    ) -> Decimal | None:
        """The kroner per unit of a foreign invoice's currency a bank payment from a kroner
        account was made at (its `cashExchangeRate`); None for a kroner invoice, or a payment
        from an account in another currency."""
        base = self._base_currency(trace)
        held = (self._accounts or {}).get(account) or {}
        if currency == base or str(held.get("currencyId") or base) != base:
            return None
        return recorded_rate(rate_of(payment.get("cashExchangeRate")))

    def _account_number_of(self, trace: Trace, account_id: str) -> str:
        """The number of the account whose id is `account_id` (the chart is read once, and
        again on a miss); empty when Billy has none."""
        for attempt in (1, 2):
            if self._accounts is not None:
                for number, account in self._accounts.items():
                    if str(account.get("id")) == account_id:
                        return number
            if attempt == 1:
                self._accounts = {
                    _text(a.get("accountNo")): a for a in self._pages(trace, "accounts")
                }
        return ""

    def _payment(
        self, trace: Trace, payload: PaymentMessage | RefundMessage, kind: PaymentKind
    ) -> dict[str, Any]:
        ours = str(payload["refund_id"] if "refund_id" in payload else payload["payment_id"])
        taken_in = pulled_reference(self.name, ours)
        if taken_in is not None:
            # Taken in from this very target: it is there already (docs/sync.md).
            return {kind: taken_in, "taken_in": True}
        invoice = self._approved_invoice(trace, str(payload["invoice_number"]), kind)
        side = "debit" if kind == "payment" else "credit"
        same = [
            payment_id
            for payment_id, payment, settled in self._payments_on(trace, invoice)
            if payment.get("cashSide") == side
            and payment.get("entryDate") == payload["date"]
            and settled == payload["amount"]
        ]
        if len(same) > payload["ordinal"]:
            return {kind: same[payload["ordinal"]], "invoice": invoice["id"]}
        account = self._bank_account(trace, self.chart.account("bank", payload["method"]))
        body = {
            "entryDate": payload["date"],
            "cashSide": side,
            "cashAccountId": account["id"],
            "associations": [{"subjectReference": f"invoice:{invoice['id']}"}],
            **self._cash(trace, payload, invoice, account),
        }
        created = self.http.request(trace, "POST", "/bankPayments", json={"bankPayment": body})
        return {kind: created["bankPayments"][0]["id"], "invoice": invoice["id"]}

    def _cash(
        self,
        trace: Trace,
        payload: PaymentMessage | RefundMessage,
        invoice: Record,
        account: Record,
    ) -> dict[str, Any]:
        """`cashAmount` in the cash account's currency, with `cashExchangeRate` where that is
        not the invoice's: the event's rate, else the rate Billy applied to the invoice."""
        currency = payload["currency"]
        cash_currency = str(account.get("currencyId") or self._base_currency(trace))
        if cash_currency == currency:
            return {"cashAmount": major(payload["amount"], currency)}
        rate = rate_of(payload.get("exchange_rate")) or rate_of(invoice.get("exchangeRate"))
        if rate is None or cash_currency != self._base_currency(trace):
            raise RejectedError(
                f"no exchange rate from {currency} to {cash_currency} for"
                f" {payload['payment_id']}: give exchange_rate on"
                " the payment, or pay into an account in the invoice's currency"
            )
        cash = _settling(payload["amount"], currency, rate, cash_currency)
        return {"cashAmount": major(cash, cash_currency), "cashExchangeRate": decimal_rate(rate)}

    def _recognition(
        self, trace: Trace, payload: RecognitionMessage, source: str
    ) -> dict[str, Any]:
        reference = f"subledger:recognition:{source}"
        existing = self._first(
            trace,
            "daybookTransactions",
            lambda r: _text(r.get("apiType")) == reference,
            apiType=reference,
        )
        if existing is not None:
            return {"voucher": existing["id"]}
        lines = [
            {
                "accountNo": int(self._account_no(line["account"])),
                "amount": major(line["amount"], line["currency"]),
                "side": line["side"],
                "currencyId": line["currency"],
                "text": f"Recognized revenue {payload['month']}",
            }
            for line in payload["lines"]
        ]
        body = {
            "entryDate": payload["date"],
            "description": f"subledger: revenue recognized in {payload['month']}",
            "apiType": reference,
            "state": "approved" if self.settings.book else "draft",
            "lines": lines,
        }
        created = self.http.request(
            trace, "POST", "/daybookTransactions", json={"daybookTransaction": body}
        )
        return {"voucher": created["daybookTransactions"][0]["id"]}


def _settling(amount: int, currency: str, rate: Fraction, cash_currency: str) -> int:
    """The cash amount (minor units of `cash_currency`) that settles exactly `amount` of
    `currency` at `rate` when Billy converts it back (`rhu(cash / rate)`): the converted amount,
    or the nearest one that does (there is one whenever a minor unit of `currency` is worth at
    least one of `cash_currency`)."""
    first = converted(amount, currency, rate, cash_currency)
    for cash in (first, first - 1, first + 1, first - 2, first + 2):
        if converted(cash, cash_currency, 1 / rate, currency) == amount:
            return cash
    raise RejectedError(
        f"{amount} of {currency} cannot be paid exactly in {cash_currency} at {rate}: pay into"
        " an account in the invoice's currency"
    )
