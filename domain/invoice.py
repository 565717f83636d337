"""The Invoice aggregate: an invoice's lines, and the payments, refunds and credits against it.

Payments, refunds and credit notes live inside their invoice, so the rules that bound them
(credits never exceed a line's net, refunds never exceed their payment, money in the invoice's
currency) are checked against one consistent state and saved with one version check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate

from subledger.domain import facts
from subledger.domain.customer import Customer
from subledger.domain.errors import AlreadyExistsError, RuleViolatedError, UnknownReferenceError
from subledger.domain.money import credit_vat
from subledger.domain.recording import Envelope, Recorded, aggregate_id, event_fields
from subledger.domain.subscription import Subscription
from subledger.domain.values import CreditedLine, InvoiceLine, line_ids


@dataclass
class _Line:
    """A line's net and VAT, and what credit notes have taken from them so far."""

    net: int
    vat: int
    vat_rate: Decimal
    credited: int = 0
    credited_vat: int = 0

    @property
    def creditable(self) -> int:
        return self.net - self.credited

    def vat_of_credit(self, amount: int) -> int:
        """The VAT a credit of `amount` on this line carries (docs/specification.md §2)."""
        return credit_vat(
            amount,
            self.vat_rate,
            line_net=self.net,
            line_vat=self.vat,
            credited_net=self.credited,
            credited_vat=self.credited_vat,
        )


@dataclass
class _Payment:
    received: int | None = None
    refunded: int = 0
    method: str | None = None


class Invoice(Aggregate):
    """Its events after `Issued` also record the invoice's `customer_id`, which their facts do
    not name, so that a projection can find the customer's rows from any of them; a refund also
    records the invoice's `currency` and its payment's `method`, so that its journal entry needs
    nothing but the event."""

    class Issued(Aggregate.Created, facts.InvoiceIssued, Recorded):
        pass

    class PaymentReceived(Aggregate.Event, facts.PaymentReceived, Recorded):
        customer_id: str

        def apply(self, aggregate: Invoice) -> None:
            payment = aggregate.payment(self.payment_id)
            payment.received, payment.method = self.amount, self.method

    class PaymentFailed(Aggregate.Event, facts.PaymentFailed, Recorded):
        customer_id: str

        def apply(self, aggregate: Invoice) -> None:
            aggregate.payment(self.payment_id)

    class PaymentRefunded(Aggregate.Event, facts.PaymentRefunded, Recorded):
        customer_id: str
        currency: str
        method: str

        def apply(self, aggregate: Invoice) -> None:
            aggregate.payment(self.payment_id).refunded += self.amount
            aggregate.refund_ids.add(self.refund_id)

    class CreditNoteIssued(Aggregate.Event, facts.CreditNoteIssued, Recorded):
        """`credited`: what the credit note took from each line (all of it where it named none),
        net and VAT; events recorded before the VAT was recorded hold it as None."""

        customer_id: str
        credited: tuple[CreditedLine, ...]

        def apply(self, aggregate: Invoice) -> None:
            for credit in self.credited:
                line = aggregate.lines[credit.line_id]
                line.credited += credit.amount
                line.credited_vat += credit.vat_at(line.vat_rate)
            aggregate.credit_note_ids.add(self.credit_note_id)

    def __init__(
        self,
        invoice_id: str,
        customer_id: str,
        issue_date: date,
        currency: str,
        lines: tuple[InvoiceLine, ...],
    ) -> None:
        self.invoice_id = invoice_id
        self.customer_id = customer_id
        self.issue_date = issue_date
        self.currency = currency
        self.lines = {
            line_id: _Line(line.net, line.vat, line.vat_rate)
            for line_id, line in zip(line_ids(lines), lines, strict=True)
        }
        self.payments: dict[str, _Payment] = {}
        self.refund_ids: set[str] = set()
        self.credit_note_ids: set[str] = set()

    @staticmethod
    def id_for(invoice_id: str) -> UUID:
        return aggregate_id("invoice", invoice_id)

    @classmethod
    def issue(
        cls,
        fact: facts.InvoiceIssued,
        customer: Customer,
        subscription: Subscription | None,
        envelope: Envelope,
    ) -> Invoice:
        customer.refuse_if_erased("customer_id")
        if subscription is not None:
            if subscription.customer_id != fact.customer_id:
                raise RuleViolatedError(
                    f"subscription {subscription.subscription_id!r} belongs to customer "
                    f"{subscription.customer_id!r}",
                    "subscription_id",
                )
            if subscription.currency != fact.currency:
                raise RuleViolatedError(
                    f"the subscription is billed in {subscription.currency}", "currency"
                )
        for index, line in enumerate(fact.lines):
            if (line.discount_amount or 0) > line.gross_before_discount:
                raise RuleViolatedError(
                    f"must be at most rhu(quantity × unit_amount) = {line.gross_before_discount}",
                    f"lines[{index}].discount_amount",
                )
        return cls._create(
            cls.Issued, id=cls.id_for(fact.invoice_id), **event_fields(fact, envelope)
        )

    def payment(self, payment_id: str) -> _Payment:
        return self.payments.setdefault(payment_id, _Payment())

    def receive_payment(self, fact: facts.PaymentReceived, envelope: Envelope) -> None:
        self._refuse_other_currency(fact.currency)
        known = self.payments.get(fact.payment_id)
        if known is not None and known.received is not None:
            raise AlreadyExistsError(f"payment {fact.payment_id!r} exists", "payment_id")
        self.trigger_event(
            self.PaymentReceived, **event_fields(fact, envelope, customer_id=self.customer_id)
        )

    def record_failed_payment(self, fact: facts.PaymentFailed, envelope: Envelope) -> None:
        self._refuse_other_currency(fact.currency)
        known = self.payments.get(fact.payment_id)
        if known is not None and known.received is not None:
            raise RuleViolatedError(
                f"payment {fact.payment_id!r} was received; it cannot fail now", "payment_id"
            )
        self.trigger_event(
            self.PaymentFailed, **event_fields(fact, envelope, customer_id=self.customer_id)
        )

    def refund(self, fact: facts.PaymentRefunded, envelope: Envelope) -> None:
        if fact.refund_id in self.refund_ids:
            raise AlreadyExistsError(f"refund {fact.refund_id!r} exists", "refund_id")
        payment = self.payments.get(fact.payment_id)
        if payment is None:
            raise UnknownReferenceError(f"no payment {fact.payment_id!r}", "payment_id")
        if payment.received is None:
            raise RuleViolatedError(
                f"payment {fact.payment_id!r} failed; there is nothing to refund", "payment_id"
            )
        refundable = payment.received - payment.refunded
        if fact.amount > refundable:
            raise RuleViolatedError(
                f"refunds on a payment never exceed it: {refundable} is left to refund",
                "amount",
            )
        assert payment.method is not None, "a received payment has its method"
        self.trigger_event(
            self.PaymentRefunded,
            **event_fields(
                fact,
                envelope,
                customer_id=self.customer_id,
                currency=self.currency,
                method=payment.method,
            ),
        )

    def issue_credit_note(self, fact: facts.CreditNoteIssued, envelope: Envelope) -> None:
        if fact.credit_note_id in self.credit_note_ids:
            raise AlreadyExistsError(
                f"credit note {fact.credit_note_id!r} exists", "credit_note_id"
            )
        if fact.issue_date < self.issue_date:
            raise RuleViolatedError(
                f"must not be before the invoice's issue_date {self.issue_date}", "issue_date"
            )
        credited = self._credits(fact)
        self.trigger_event(
            self.CreditNoteIssued,
            **event_fields(fact, envelope, customer_id=self.customer_id, credited=credited),
        )

    def _credits(self, fact: facts.CreditNoteIssued) -> tuple[CreditedLine, ...]:
        """What the credit note takes from each line, with its VAT. The rules are checked here,
        before the event; `apply` only adds up."""
        if fact.lines is None:
            whole = tuple(
                CreditedLine(
                    line_id=line_id,
                    amount=line.creditable,
                    vat=line.vat_of_credit(line.creditable),
                )
                for line_id, line in self.lines.items()
                if line.creditable > 0
            )
            if not whole:
                raise RuleViolatedError("the invoice has nothing left to credit", "invoice_id")
            return whole
        for index, credit in enumerate(fact.lines):
            line = self.lines.get(credit.line_id)
            if line is None:
                raise UnknownReferenceError(
                    f"invoice {self.invoice_id!r} has no line {credit.line_id!r}",
                    f"lines[{index}].line_id",
                )
            if credit.amount > line.creditable:
                raise RuleViolatedError(
                    f"credits on a line never exceed its net: {line.creditable} is left to credit",
                    f"lines[{index}].amount",
                )
        # A credit note names each line once (`facts.CreditNoteIssued.check`), so every credit
        # is worked out from what earlier credit notes left.
        return tuple(
            CreditedLine(
                line_id=credit.line_id,
                amount=credit.amount,
                vat=self.lines[credit.line_id].vat_of_credit(credit.amount),
            )
            for credit in fact.lines
        )

    def _refuse_other_currency(self, currency: str) -> None:
        if currency != self.currency:
            raise RuleViolatedError(f"the invoice is in {self.currency}", "currency")
