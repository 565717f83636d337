"""Payments and refunds on Dinero's invoices, as the Dinero adapter (`adapters.sync.dinero`)
finds and makes them, in kroner and in the invoice's currency; and the payments standing on our
invoices, which the payments pull reads (`payments`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from subledger.adapters.sync.common import (
    BASE_CURRENCY,
    PaymentKind,
    converted,
    major,
    minor,
    rate_of,
)
from subledger.adapters.sync.dinero_client import _per_unit, guid
from subledger.adapters.sync.dinero_documents import DineroDocuments
from subledger.adapters.sync.port import (
    RejectedError,
    SentInvoice,
    TargetInvoice,
    TargetPayment,
    Trace,
)
from subledger.adapters.sync.pulled import RatedPayment, pulled_reference, recorded_rate
from subledger.projections.messages import PaymentMessage, RefundMessage


class DineroPayments(DineroDocuments):
    def invoices(self) -> list[TargetInvoice]:
        raise NotImplementedError  # the target's (adapters.sync.dinero)

    def payments(self, invoices: Sequence[SentInvoice]) -> dict[str, list[TargetPayment]]:
        """The payments standing on those of `invoices` whose paid amount at Dinero is not
        the one we know (reconciliation's read of the invoices: a few requests), each read off
        the invoice's own payments (one request per such invoice, under Dinero's 100 a
        minute). A refund is a negative payment."""
        trace = Trace()
        held = {held.number: held for held in self.invoices() if held.kind == "invoice"}
        found: dict[str, list[TargetPayment]] = {}
        for ours in invoices:
            there = held.get(ours.number)
            if there is None or there.paid == ours.paid:
                continue
            key = guid("invoice", ours.invoice_id)
            body = self._call(trace, "GET", f"invoices/{key}/payments", "v2")
            standing: list[TargetPayment] = []
            for payment in body.get("Payments") or []:
                amount = minor(payment.get("Amount"), BASE_CURRENCY)
                settled = payment.get("AmountInForeignCurrency")
                if settled is None or ours.currency == BASE_CURRENCY:
                    settled = payment.get("Amount")
                external = payment.get("ExternalReference")
                settled_minor = abs(minor(settled, ours.currency))
                standing.append(
                    RatedPayment(
                        reference=str(payment.get("Id")),
                        side="in" if amount > 0 else "out",
                        amount=settled_minor,
                        day=str(payment.get("PaymentDate") or "")[:10],
                        account=str(payment.get("DepositAccountNumber") or ""),
                        external_reference=None if external is None else str(external),
                        # The kroner the bank booked per unit of the invoice's currency.
                        exchange_rate=None
                        if ours.currency == BASE_CURRENCY or not settled_minor
                        else recorded_rate(_per_unit(abs(amount), settled_minor, ours.currency)),
                    )
                )
            found[ours.invoice_id] = standing
        return found

    def _payment(
        self, trace: Trace, payload: PaymentMessage | RefundMessage, kind: PaymentKind
    ) -> dict[str, Any]:
        invoice = guid("invoice", str(payload["invoice_id"]))
        reference = str(payload["refund_id"] if "refund_id" in payload else payload["payment_id"])
        taken_in = pulled_reference(self.name, reference)
        if taken_in is not None:
            # Taken in from this very target: it is there already (docs/sync.md).
            return {kind: taken_in, "invoice": invoice, "taken_in": True}
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
