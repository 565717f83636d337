"""What a payment taken in from a target is called here (docs/sync.md, "Two-way payments").

A payment or refund registered at a target (an accountant's bank reconciliation in Billy or
Dinero) becomes an event whose ids are derived from the target's name and its id of the
payment, so that reading it twice appends it once (the ledger takes an event id once) and the
adapters can tell it from ours: a payment whose id names this target is never sent back to it.

A payment of an invoice in a foreign currency carries the exchange rate the target recorded
for it (`RatedPayment.exchange_rate`, units of the target's base currency per unit of the
invoice's): Billy's `cashExchangeRate` of a bank payment from a kroner account, Dinero's
kroner `Amount` over its `AmountInForeignCurrency`. The event takes it as its
`exchange_rate` (docs/specification.md §7), so that another target is told the base-currency
amount the bank booked, not one at the invoice's rate.

The method of such a payment is read back from the cash or deposit account it went through:
the target's account number, through the target's account mapping reversed, is one of our
bank accounts, whose method the chart names.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Final, Literal
from uuid import UUID, uuid5

from subledger.adapters.sync.common import decimal_rate
from subledger.adapters.sync.port import TargetPayment
from subledger.domain.chart import Chart
from subledger.domain.fields import MAX_EXCHANGE_RATE, MAX_EXCHANGE_RATE_PLACES, MAX_ID_LENGTH

PulledKind = Literal["payment", "refund"]
#: The namespace of pulled payments' event ids (a fixed, random UUID: never change it, or
#: every payment taken in before would be taken in again).
PULLED_NAMESPACE: Final = UUID("4f1d0a5c-8a43-4b0e-9d61-6c3e0b7f2a19")
#: The method of a payment into our default bank account (the one no method names).
DEFAULT_METHOD: Final = "bank_transfer"
#: The method used when `bank_transfer` names an account of its own in the chart.
OTHER_METHOD: Final = "other"


@dataclass(frozen=True)
class RatedPayment(TargetPayment):
    """A target's payment of a foreign-currency invoice, with the exchange rate the target
    recorded for it (None where it recorded none of its own: the invoice's then applies)."""

    exchange_rate: Decimal | None = None


def recorded_rate(rate: Fraction | None) -> Decimal | None:
    """A rate a target recorded, as an event's `exchange_rate` takes it: exact where it has at
    most ten decimals, else to ten (enough that the base-currency amount it gives is the one
    the target booked); None where there is none, or none an event could carry."""
    if rate is None or rate <= 0:
        return None
    decimal = decimal_rate(rate).quantize(Decimal(1).scaleb(-MAX_EXCHANGE_RATE_PLACES))
    text = format(decimal, "f").rstrip("0").rstrip(".")
    decimal = Decimal(text)
    return decimal if Decimal(0) < decimal < MAX_EXCHANGE_RATE else None


def pulled_event_id(target: str, reference: str) -> str:
    """The event id of the payment or refund `reference` of `target`: the same on every
    poll, so that the ledger appends it once."""
    return str(uuid5(PULLED_NAMESPACE, f"{target}\n{reference}"))


def pulled_id(target: str, kind: PulledKind, reference: str) -> str:
    """Our payment or refund id for the target's `reference` (`billy:payment:<id>`), or, where
    that would be longer than an id may be, one derived from it."""
    readable = f"{target}:{kind}:{reference}"
    if len(readable) <= MAX_ID_LENGTH:
        return readable
    return f"{target[:40]}:{kind}:{uuid5(PULLED_NAMESPACE, readable)}"


def pulled_reference(target: str, our_id: str) -> str | None:
    """The target's id of a payment or refund we took in from `target` (by our id for it),
    or None when the id is not one we made for that target."""
    for kind in ("payment", "refund"):
        prefix = f"{target}:{kind}:"
        if our_id.startswith(prefix) and len(our_id) > len(prefix):
            return our_id[len(prefix) :]
    return None


def method_for(account: str, accounts: dict[str, str], chart: Chart) -> str:
    """The payment method of money that went through the target's `account` (its number):
    our account it is mapped from (`accounts`: ours → theirs; unmapped, the same number),
    and the method the chart books to that bank account. Our default bank account, and an
    account that is none of our bank accounts, give `bank_transfer` (or `other` where the
    chart gives `bank_transfer` an account of its own)."""
    ours = next((o for o, t in sorted(accounts.items()) if t == account), account)
    methods = sorted(method for method, number in chart.bank_by_method.items() if number == ours)
    if methods:
        return methods[0]
    return DEFAULT_METHOD if DEFAULT_METHOD not in chart.bank_by_method else OTHER_METHOD
