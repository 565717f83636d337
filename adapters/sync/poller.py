"""Two-way payments: the payments and refunds registered at a target on the invoices we sent it,
taken into the log (docs/sync.md, "Two-way payments").

For each target configured with `direction = "both"`, every `poll_seconds`:

1. The delivery log says which of our invoices the target holds (their `invoice` messages
   sent), which payments and refunds are ours (the target's ids of our `payment` and `refund`
   messages sent), and which invoices have a payment or refund of ours not yet delivered: those
   are left for a later poll, since what the target shows of them may be ours on its way.
2. The log says what each invoice was paid (payments less refunds) and which payments were
   taken in from this target before (their `source`).
3. The target answers the payments standing on those invoices (`Target.payments`, inside the
   target's request budget: a Dinero organization's 100 requests a minute are shared with the
   delivery).
4. Each payment that is neither ours (by the target's id, or by the `ExternalReference` that
   carries our id at Dinero) nor taken in before becomes `payment.received` (money in) or
   `payment.refunded` (money out, refunding the invoice's latest payment with enough left),
   with `source`, its method read back from its cash or deposit account
   (`adapters.sync.pulled.method_for`), the exchange rate the target recorded where the invoice
   is in a foreign currency (`adapters.sync.pulled.RatedPayment`) and an event id derived from
   (target, reference): the ledger appends an id once, so polling again, or two processes
   polling, appends it once. An invoice's new payments come before its refunds, so a refund
   registered with its payment refunds it, after it in the log; a refund with nothing to
   refund yet is left out (`refused`) until a poll finds its payment.
5. A payment taken in before that the target no longer holds (deleted, or voided at Billy) is
   reported, once per process: a notification through the notifier, and a line in the
   reconciliation (`check`). It is not undone in the log: a person decides.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from hashlib import sha256
from typing import Any, Final

import orjson

from subledger.adapters.sync.common import TargetSettings
from subledger.adapters.sync.log import DeliveryLog
from subledger.adapters.sync.notify import Notifier
from subledger.adapters.sync.port import SentInvoice, Target, TargetPayment
from subledger.adapters.sync.pulled import RatedPayment, method_for, pulled_event_id, pulled_id
from subledger.domain.chart import Chart
from subledger.domain.errors import BatchRefusedError
from subledger.domain.facts import PaymentReceived, PaymentRefunded
from subledger.domain.invoice import Invoice
from subledger.domain.ledger import Ledger, Submission
from subledger.domain.values import PaymentSource

log = logging.getLogger("subledger.sync.poll")

#: Events appended in one batch.
BATCH_SIZE: Final = 500
#: Messages read from the delivery log at a time.
PAGE_SIZE: Final = 1000


@dataclass(frozen=True)
class DeletedPayment:
    """A payment or refund taken in from `target` that the target no longer holds."""

    target: str
    invoice_id: str
    invoice_number: str
    reference: str
    event_id: str
    our_id: str
    kind: str
    amount: int
    currency: str

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "number": self.invoice_number,
            "problem": "deleted at the target",
            "invoice_id": self.invoice_id,
            "reference": self.reference,
            "event_id": self.event_id,
            f"{self.kind}_id": self.our_id,
            "amount": self.amount,
            "currency": self.currency,
        }


@dataclass
class PollResult:
    """What one poll of a target found: events appended (and those already there), payments
    taken in before that are gone, and payments that could not be taken in, with why."""

    target: str
    appended: int = 0
    known: int = 0
    new: list[Submission] = field(default_factory=list)
    deleted: list[DeletedPayment] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@dataclass
class _Sent:
    """What the delivery log says of one target."""

    invoices: dict[str, tuple[str, str]] = field(default_factory=dict)
    references: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)


@dataclass
class _Paid:
    """What the log says of one invoice: each payment's amount received and refunded (in the
    order received), and what was taken in from the polled target (its reference → the
    event's kind, our id, the amount)."""

    payments: dict[str, list[int]] = field(default_factory=dict)
    refunded: int = 0
    taken_in: dict[str, tuple[str, str, int]] = field(default_factory=dict)

    @property
    def paid(self) -> int:
        return sum(received for received, _ in self.payments.values()) - self.refunded


def _digest(type_name: str, data: dict[str, Any]) -> bytes:
    """The digest a retry of the event is compared by: of its type and its data in the
    catalogue's order, as a sender's would be."""
    return sha256(type_name.encode() + b"\n" + orjson.dumps(data)).digest()


def _rate(payment: TargetPayment) -> tuple[Decimal | None, dict[str, str]]:
    """The exchange rate the target recorded for `payment`, and the field it makes in the
    event's data (none without a rate)."""
    rate = payment.exchange_rate if isinstance(payment, RatedPayment) else None
    return rate, {} if rate is None else {"exchange_rate": str(rate)}


def _received(
    target: str, invoice_id: str, currency: str, payment: TargetPayment, method: str
) -> Submission:
    reference = payment.reference
    rate, rated = _rate(payment)
    fact = PaymentReceived(
        payment_id=pulled_id(target, "payment", reference),
        invoice_id=invoice_id,
        amount=payment.amount,
        currency=currency,
        method=method,
        received_on=date.fromisoformat(payment.day),
        exchange_rate=rate,
        source=PaymentSource(target=target, reference=reference),
    )
    data = {
        "payment_id": fact.payment_id,
        "invoice_id": invoice_id,
        "amount": fact.amount,
        "currency": currency,
        "method": method,
        "received_on": payment.day,
        **rated,
        "source": {"target": target, "reference": reference},
    }
    return Submission(pulled_event_id(target, reference), fact, _digest(fact.TYPE, data))


def _refunded(target: str, payment_id: str, payment: TargetPayment) -> Submission:
    reference = payment.reference
    rate, rated = _rate(payment)
    fact = PaymentRefunded(
        refund_id=pulled_id(target, "refund", reference),
        payment_id=payment_id,
        amount=payment.amount,
        refunded_on=date.fromisoformat(payment.day),
        exchange_rate=rate,
        source=PaymentSource(target=target, reference=reference),
    )
    data = {
        "refund_id": fact.refund_id,
        "payment_id": payment_id,
        "amount": fact.amount,
        "refunded_on": payment.day,
        **rated,
        "source": {"target": target, "reference": reference},
    }
    return Submission(pulled_event_id(target, reference), fact, _digest(fact.TYPE, data))


def refunded_payment(payments: Mapping[str, list[int]], amount: int) -> str | None:
    """The payment a refund of `amount` registered at a target refunds (a target's refund
    names none): the latest received with at least `amount` left to refund."""
    for payment_id, (received, refunded) in reversed(list(payments.items())):
        if received - refunded >= amount:
            return payment_id
    return None


class PaymentPoller:
    """Takes in the payments registered at the targets configured `direction = "both"`."""

    def __init__(
        self,
        ledger: Ledger,
        delivery: DeliveryLog,
        targets: Mapping[str, Target],
        settings: Iterable[TargetSettings],
        chart: Chart,
        notifier: Notifier | None = None,
        notify: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.delivery = delivery
        self.targets = targets
        self.settings = {s.name: s for s in settings if s.direction == "both"}
        self.chart = chart
        self.notify = notify or (_notifier_sender(notifier) if notifier is not None else None)
        self._reported: set[tuple[str, str]] = set()

    @property
    def names(self) -> list[str]:
        """The targets polled."""
        return sorted(name for name in self.settings if name in self.targets)

    def run(self, stop: threading.Event) -> None:
        """Poll each target every `poll_seconds` until `stop`; a poll that fails is logged and
        tried again at the next turn."""
        due = dict.fromkeys(self.names, 0.0)
        while not stop.is_set() and due:
            now = time.monotonic()
            for name, at in due.items():
                if at > now or stop.is_set():
                    continue
                try:
                    result = self.poll(name)
                    if result.appended:
                        log.info("%s: %d payments taken in", name, result.appended)
                except Exception:
                    log.exception("polling %s for payments failed; trying again later", name)
                due[name] = time.monotonic() + self.settings[name].poll_seconds
            stop.wait(max(0.05, min(due.values()) - time.monotonic()))

    def poll(self, name: str) -> PollResult:
        """Take in what `name` holds that the log does not, and report what it lost."""
        result = self.check(name)
        self._append(result)
        for deleted in result.deleted:
            self._report(deleted)
        return result

    def check(self, name: str) -> PollResult:
        """What a poll of `name` would append (`new`), and the payments taken in from it
        before that it no longer holds (`deleted`): nothing is appended or reported."""
        settings = self.settings[name]
        sent = self._sent(name)
        paid, our_ids = self._paid(name)
        asked = [
            SentInvoice(invoice_id, number, currency, paid.get(invoice_id, _Paid()).paid)
            for invoice_id, (number, currency) in sorted(sent.invoices.items())
            if invoice_id not in sent.busy
        ]
        standing = self.targets[name].payments(asked) if asked else {}
        result = PollResult(name)
        for invoice_id, payments in sorted(standing.items()):
            if invoice_id not in sent.invoices or invoice_id in sent.busy:
                continue
            number, currency = sent.invoices[invoice_id]
            known = paid.setdefault(invoice_id, _Paid())
            there = {payment.reference for payment in payments}
            for reference, (kind, our_id, amount) in sorted(known.taken_in.items()):
                if reference not in there:
                    result.deleted.append(
                        DeletedPayment(
                            name,
                            invoice_id,
                            number,
                            reference,
                            pulled_event_id(name, reference),
                            our_id,
                            kind,
                            amount,
                            currency,
                        )
                    )
            new = [
                payment
                for payment in payments
                if payment.reference not in known.taken_in
                and payment.reference not in sent.references
                and (payment.external_reference or "") not in our_ids
            ]
            # Money in before money out, each in the order of its day.
            for payment in sorted(new, key=lambda p: (p.side != "in", p.day, p.reference)):
                self._take(result, settings, invoice_id, currency, known, payment)
        return result

    def _take(
        self,
        result: PollResult,
        settings: TargetSettings,
        invoice_id: str,
        currency: str,
        known: _Paid,
        payment: TargetPayment,
    ) -> None:
        name = settings.name
        if payment.amount <= 0:
            return
        if payment.side == "in":
            method = method_for(payment.account, settings.accounts, self.chart)
            submission = _received(name, invoice_id, currency, payment, method)
            known.payments[pulled_id(name, "payment", payment.reference)] = [payment.amount, 0]
        else:
            refunded = refunded_payment(known.payments, payment.amount)
            if refunded is None:
                result.refused.append(
                    f"{name}: refund {payment.reference} of {payment.amount} on invoice"
                    f" {invoice_id}: no payment of the invoice has that much left to refund"
                )
                return
            submission = _refunded(name, refunded, payment)
            known.payments[refunded][1] += payment.amount
            known.refunded += payment.amount
        result.new.append(submission)

    def _append(self, result: PollResult) -> None:
        """Append what is new, a batch at a time; an event the ledger refuses is left out of
        its batch and named in `refused` (with what depends on it, the batch is tried again)."""
        for start in range(0, len(result.new), BATCH_SIZE):
            batch = result.new[start : start + BATCH_SIZE]
            while batch:
                try:
                    outcomes = self.ledger.append(batch)
                except BatchRefusedError as error:
                    bad = {problem.index for problem in error.problems}
                    for problem in error.problems:
                        result.refused.append(
                            f"{result.target}: event {batch[problem.index].event_id}"
                            f" refused: {problem.error.message}"
                        )
                    batch = [s for index, s in enumerate(batch) if index not in bad]
                    continue
                result.appended += sum(1 for outcome in outcomes if outcome.appended)
                result.known += sum(1 for outcome in outcomes if not outcome.appended)
                break
        for refusal in result.refused:
            log.warning("payment not taken in: %s", refusal)

    def _report(self, deleted: DeletedPayment) -> None:
        key = (deleted.target, deleted.reference)
        if key in self._reported:
            return
        self._reported.add(key)
        log.warning(
            "%s: the %s %s taken in on invoice %s (event %s) is no longer there",
            deleted.target,
            deleted.kind,
            deleted.reference,
            deleted.invoice_number,
            deleted.event_id,
        )
        if self.notify is not None:
            try:
                self.notify({"event": f"sync.{deleted.kind}.deleted", **deleted.describe()})
            except Exception:
                log.exception("the notification of a deleted payment could not be delivered")

    def _sent(self, name: str) -> _Sent:
        sent = _Sent()
        after: tuple[str, int, str] | None = None
        while True:
            page = self.delivery.messages(target=name, after=after, limit=PAGE_SIZE)
            for message in page:
                payload = message.payload
                if message.kind == "invoice" and message.status == "sent":
                    sent.invoices[str(payload["invoice_id"])] = (
                        str(payload["number"]),
                        str(payload["currency"]),
                    )
                elif message.kind in ("payment", "refund"):
                    if message.status != "sent":
                        sent.busy.add(str(payload["invoice_id"]))
                    elif message.target_ids.get(message.kind) is not None:
                        sent.references.add(str(message.target_ids[message.kind]))
            if len(page) < PAGE_SIZE:
                return sent
            after = (page[-1].target, page[-1].seq, page[-1].id)

    def _paid(self, name: str) -> tuple[dict[str, _Paid], set[str]]:
        """Per invoice, what the log says was paid on it; and every payment and refund id."""
        paid: dict[str, _Paid] = {}
        invoice_of: dict[str, str] = {}
        ids: set[str] = set()
        kinds = (Invoice.PaymentReceived, Invoice.PaymentRefunded)
        for entry in self.ledger.iter_entries(self.ledger.last_position(), kinds):
            event: Any = entry.event
            source = event.source
            if isinstance(event, Invoice.PaymentReceived):
                known = paid.setdefault(event.invoice_id, _Paid())
                known.payments[event.payment_id] = [event.amount, 0]
                invoice_of[event.payment_id] = event.invoice_id
                ids.add(event.payment_id)
                kind, our_id = "payment", event.payment_id
            else:
                invoice_id = invoice_of.get(event.payment_id)
                if invoice_id is None:
                    continue
                known = paid.setdefault(invoice_id, _Paid())
                if event.payment_id in known.payments:
                    known.payments[event.payment_id][1] += event.amount
                known.refunded += event.amount
                ids.add(event.refund_id)
                kind, our_id = "refund", event.refund_id
            if source is not None and source.target == name:
                known.taken_in[source.reference] = (kind, our_id, event.amount)
        return paid, ids


def _notifier_sender(notifier: Notifier) -> Callable[[dict[str, Any]], None]:
    """How a report reaches the people the notifier tells of failed messages: the webhook gets
    the document as JSON, the mailbox a mail listing it."""

    def send(document: dict[str, Any]) -> None:
        notifier.send(
            document,
            subject=f"subledger: a {document['kind']} taken in from {document['target']}"
            " was deleted there",
            advice="The log still holds it: refund it, or register it at the target again.",
        )

    return send
