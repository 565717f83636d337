"""A realistic generated business, as the events its billing system would append.

Customers arrive over the years on monthly, quarterly and yearly plans (seats × a price tier),
some with trials and discounts; every period is invoiced and paid, some late and some never;
customers upgrade, downgrade, pause, churn and come back; some invoices are credited and some
payments refunded; month ends are closed. Deterministic for a seed. Every event obeys the rules
of docs/specification.md §1.3, so the whole stream appends without a refusal, in the order
generated.

Options, all off by default (so a seed's default business never changes) and meant for testing
the edges of syncing: more currencies (JPY without decimals, KWD with three), invoices without a
`due_date` that name their `payment_method` instead, `exchange_rate`s on foreign-currency
documents, and lines credited in parts whose VAT leaves a remainder (docs/specification.md §2).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from subledger.domain.dates import Month, add_months
from subledger.domain.money import credit_vat, rhu, vat_of

VAT_RATE = "0.25"
_VAT = Decimal(VAT_RATE)
MONTHS_OF = {"month": 1, "quarter": 3, "year": 12}
#: Monthly price tiers per currency, in the currency's own minor units (øre, cents, yen, fils).
PRICES = {
    "DKK": (9900, 24900, 49900),
    "EUR": (1400, 3400, 6700),
    "JPY": (1500, 3900, 7800),
    "KWD": (3500, 8900, 17500),
}
#: Units of kroner per unit of each foreign currency, for `exchange_rates`.
EXCHANGE_RATES = {"EUR": "7.4604", "JPY": "0.0437", "KWD": "22.3105"}
#: Nets of the usage lines that `split_credits` credits in parts: none a multiple of 4, so at
#: 25% their VAT has a fraction to round, and the parts' VAT rarely adds up to the line's.
USAGE_AMOUNTS = (10002, 10006, 2501, 333)
YEARLY_FACTOR = 10  # a yearly plan costs ten months
METHODS = ("card", "card", "card", "bank_transfer", "mobilepay")


@dataclass(order=True)
class _Pending:
    """An event waiting to be appended on `report_on`; `order` keeps generation order."""

    report_on: date
    order: int
    event: dict[str, Any] = field(compare=False)


@dataclass
class _Line:
    """An invoice line as the billing system tracks it: its net and VAT, and what was credited."""

    net: int
    vat: int
    credited: int = 0
    credited_vat: int = 0

    def credit(self, amount: int) -> int:
        """Credit `amount` of the line's net; return the gross credited (net and its VAT)."""
        vat = credit_vat(
            amount,
            _VAT,
            line_net=self.net,
            line_vat=self.vat,
            credited_net=self.credited,
            credited_vat=self.credited_vat,
        )
        self.credited += amount
        self.credited_vat += vat
        return amount + vat


@dataclass
class Business:
    """`customers` customers arriving over `months` months from `start`; `eur_percent` of them
    are billed in euros, the others in kroner. Several businesses of different seeds can share
    one log if only one of them closes the months.

    Options (off by default): `currencies` maps currencies of `PRICES` to the percent of
    customers billed in each (in place of `eur_percent`; the rest are billed in kroner);
    `due_dates=False` leaves out every invoice's `due_date` and names its `payment_method`
    instead (its payment then uses that method); `exchange_rates` puts `EXCHANGE_RATES` on the
    invoices, credit notes, payments and refunds of foreign currencies; `split_credits` gives
    some invoices a usage line credited in two or three parts, the last of them sometimes a
    credit note without lines (crediting what is left of every line)."""

    customers: int = 500
    start: date = date(2023, 1, 1)
    months: int = 36
    seed: int = 1
    eur_percent: int = 15
    close_periods: bool = True
    currencies: Mapping[str, int] | None = None
    due_dates: bool = True
    exchange_rates: bool = False
    split_credits: bool = False

    def __post_init__(self) -> None:
        if self.currencies is not None:
            unknown = set(self.currencies) - set(PRICES)
            if unknown or sum(self.currencies.values()) > 100:
                raise ValueError(f"currencies: percents of {', '.join(PRICES)}, at most 100")
        self._random = random.Random(self.seed)  # noqa: S311 (deterministic, not secret)
        self._order = 0
        self._queue: list[_Pending] = []
        self._ids = 0
        self.end = add_months(self.start, self.months)

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event of the business, in the order its billing system appends them."""
        arrivals = sorted(
            self.start + timedelta(days=self._random.randrange((self.end - self.start).days - 30))
            for _ in range(self.customers)
        )
        for number, arrival in enumerate(arrivals, start=1):
            self._customer(number, arrival)
        month = Month.of(self.start)
        while self.close_periods and month.end <= self.end:
            self._emit(month.end + timedelta(days=9), "period.closed", {"period": str(month)})
            month = month.next()
        for sequence, pending in enumerate(sorted(self._queue)):
            yield {"id": f"evt_{self.seed}_{sequence + 1:08d}", **pending.event}

    # Building blocks.

    def _emit(self, report_on: date, type_name: str, data: dict[str, Any]) -> None:
        self._order += 1
        self._queue.append(_Pending(report_on, self._order, {"type": type_name, "data": data}))

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}_{self.seed}_{self._ids:07d}"

    def _customer(self, number: int, arrival: date) -> None:
        rnd = self._random
        customer_id = f"cus_{self.seed}_{number:06d}"
        kind = rnd.choices(("company", "person", "public"), (70, 25, 5))[0]
        data: dict[str, Any] = {
            "customer_id": customer_id,
            "name": f"Customer {number}",
            "country": "DK",
            "kind": kind,
            "email": f"billing{number}@example.dk",
            "customer_number": str(10000 + number),
        }
        if kind == "public":
            data["ean"] = f"579{number:010d}"
        elif kind == "company":
            data["vat_number"] = f"{30000000 + number}"
        self._emit(arrival, "customer.created", data)
        if rnd.random() < 0.05:
            later = arrival + timedelta(days=rnd.randrange(30, 400))
            if later < self.end:
                self._emit(
                    later,
                    "customer.updated",
                    {"customer_id": customer_id, "email": f"finance{number}@example.dk"},
                )
        currency = self._currency()
        start = arrival
        while start < self.end:
            ended = self._subscription(customer_id, currency, start)
            if ended is None or rnd.random() > 0.25:
                return
            start = ended + timedelta(days=rnd.randrange(60, 300))  # comes back

    def _currency(self) -> str:
        """A new customer's currency: one draw, as the default business has always made it."""
        draw = self._random.randrange(100)
        shares = {"EUR": self.eur_percent} if self.currencies is None else self.currencies
        for currency, percent in shares.items():
            if draw < percent:
                return currency
            draw -= percent
        return "DKK"

    def _rate(self, currency: str) -> dict[str, str]:
        """The `exchange_rate` field of a document in `currency`, where the option asks for it."""
        if self.exchange_rates and currency in EXCHANGE_RATES:
            return {"exchange_rate": EXCHANGE_RATES[currency]}
        return {}

    def _subscription(self, customer_id: str, currency: str, start: date) -> date | None:
        """One subscription's life; returns the day it ended, or None if it never did."""
        rnd = self._random
        subscription_id = self._next_id("sub")
        interval = rnd.choices(("month", "quarter", "year"), (70, 10, 20))[0]
        months = MONTHS_OF[interval]
        tier = rnd.choice(PRICES[currency])
        unit_amount = tier * (YEARLY_FACTOR if interval == "year" else months)
        seats = rnd.choices((1, 2, 3, 5, 10), (50, 20, 15, 10, 5))[0]
        data: dict[str, Any] = {
            "subscription_id": subscription_id,
            "customer_id": customer_id,
            "start_date": start.isoformat(),
            "currency": currency,
            "interval": interval,
            "items": [
                {"product_id": f"plan_{tier}", "quantity": str(seats), "unit_amount": unit_amount}
            ],
        }
        discount_percent = 0
        discount_until = start
        if rnd.random() < 0.2:
            discount_percent = rnd.choice((10, 20, 30))
            repeating = rnd.random() < 0.6
            data["discount"] = {"percent": f"0.{discount_percent:02d}"}
            if repeating:
                data["discount"] |= {"duration": "repeating", "duration_in_months": 3}
                discount_until = add_months(start, 3)
            else:
                discount_until = self.end
        billing = start
        if rnd.random() < 0.3:
            billing = start + timedelta(days=14)
            data["trial_end"] = billing.isoformat()
        self._emit(start, "subscription.started", data)

        churn_per_period = 1 - (1 - 0.02) ** months
        paused_until: date | None = None
        while billing < self.end:
            period_end = add_months(billing, months)
            if paused_until is not None:
                billing, paused_until = paused_until, None
                continue
            discounted = billing < discount_until and discount_percent
            amount = rhu(seats * unit_amount)
            discount_amount = rhu(Fraction(amount * discount_percent, 100)) if discounted else 0
            paid = self._invoice(
                customer_id,
                subscription_id,
                currency,
                billing,
                period_end,
                f"plan_{tier}",
                seats,
                unit_amount,
                discount_amount,
            )
            if not paid:  # involuntary churn, reported late
                self._emit(
                    billing + timedelta(days=21),
                    "subscription.cancelled",
                    {
                        "subscription_id": subscription_id,
                        "effective_date": billing.isoformat(),
                        "reason": "involuntary",
                    },
                )
                return billing
            roll = rnd.random()
            if roll < churn_per_period:
                requested = period_end - timedelta(days=rnd.randrange(1, 20))
                self._emit(
                    max(requested, billing),
                    "subscription.cancelled",
                    {
                        "subscription_id": subscription_id,
                        "effective_date": period_end.isoformat(),
                        "requested_on": max(requested, billing).isoformat(),
                        "reason": "voluntary",
                    },
                )
                return period_end
            if roll < churn_per_period + 0.04 and period_end < self.end:
                seats = max(1, seats + rnd.choice((-2, -1, 1, 1, 2, 5)))
                self._emit(
                    period_end - timedelta(days=3),
                    "subscription.changed",
                    {
                        "subscription_id": subscription_id,
                        "effective_date": period_end.isoformat(),
                        "items": [
                            {
                                "product_id": f"plan_{tier}",
                                "quantity": str(seats),
                                "unit_amount": unit_amount,
                            }
                        ],
                    },
                )
            elif roll < churn_per_period + 0.05 and interval == "month":
                resume = add_months(period_end, rnd.choice((1, 2)))
                if resume < self.end:
                    self._emit(
                        period_end,
                        "subscription.paused",
                        {
                            "subscription_id": subscription_id,
                            "effective_date": period_end.isoformat(),
                        },
                    )
                    self._emit(
                        resume,
                        "subscription.resumed",
                        {"subscription_id": subscription_id, "effective_date": resume.isoformat()},
                    )
                    paused_until = resume
            billing = period_end
        return None

    def _invoice(
        self,
        customer_id: str,
        subscription_id: str,
        currency: str,
        issued: date,
        period_end: date,
        product_id: str,
        seats: int,
        unit_amount: int,
        discount_amount: int,
    ) -> bool:
        """Invoice one period, and its payment story; False if it is never paid."""
        rnd = self._random
        invoice_id = self._next_id("inv")
        usage = self.split_credits and rnd.random() < 0.1
        line: dict[str, Any] = {
            "line_id": "1",
            "product_id": product_id,
            "quantity": str(seats),
            "unit_amount": unit_amount,
            "vat_rate": VAT_RATE,
            "period_start": issued.isoformat(),
            "period_end": period_end.isoformat(),
        }
        if discount_amount:
            line["discount_amount"] = discount_amount
        net = rhu(seats * unit_amount) - discount_amount
        lines = {"1": _Line(net, vat_of(net, _VAT))}
        data: dict[str, Any] = {
            "invoice_id": invoice_id,
            "customer_id": customer_id,
            "subscription_id": subscription_id,
            "issue_date": issued.isoformat(),
            "due_date": (issued + timedelta(days=14)).isoformat(),
            "number": invoice_id.upper(),
            "currency": currency,
            "lines": [line],
        }
        method = None
        if not self.due_dates:
            method = rnd.choice(METHODS)
            del data["due_date"]
            data["payment_method"] = method
        if usage:
            amount = rnd.choice(USAGE_AMOUNTS)
            data["lines"].append(
                {
                    "line_id": "2",
                    "product_id": "usage",
                    "quantity": "1",
                    "unit_amount": amount,
                    "vat_rate": VAT_RATE,
                }
            )
            lines["2"] = _Line(amount, vat_of(amount, _VAT))
        self._emit(issued, "invoice.issued", data | self._rate(currency))
        credited_on = issued
        if rnd.random() < 0.03 and net > 1:
            credited_net = rnd.randrange(1, net)
            credited_on = issued + timedelta(days=rnd.randrange(1, 10))
            self._credit_note(invoice_id, currency, credited_on, {"1": credited_net})
            lines["1"].credit(credited_net)
        if usage:
            self._split_credits(invoice_id, currency, credited_on, lines)
        gross = sum(
            line.net + line.vat - line.credited - line.credited_vat for line in lines.values()
        )
        if gross <= 0:  # credited whole: nothing to pay
            return True
        payment_id = self._next_id("pay")
        story = rnd.random()
        if story < 0.03:
            self._emit(
                issued + timedelta(days=15),
                "payment.failed",
                {
                    "payment_id": payment_id,
                    "invoice_id": invoice_id,
                    "amount": gross,
                    "currency": currency,
                    "failed_on": (issued + timedelta(days=15)).isoformat(),
                    "reason": "card declined",
                },
            )
            return False
        received = issued + timedelta(days=rnd.randrange(0, 10))
        if story < 0.10:  # late: fails first, paid later
            self._emit(
                issued + timedelta(days=1),
                "payment.failed",
                {
                    "payment_id": payment_id,
                    "invoice_id": invoice_id,
                    "amount": gross,
                    "currency": currency,
                    "failed_on": (issued + timedelta(days=1)).isoformat(),
                },
            )
            received = issued + timedelta(days=rnd.randrange(15, 45))
        self._emit(
            received,
            "payment.received",
            {
                "payment_id": payment_id,
                "invoice_id": invoice_id,
                "amount": gross,
                "currency": currency,
                "method": method or rnd.choice(METHODS),
                "received_on": received.isoformat(),
            }
            | self._rate(currency),
        )
        if rnd.random() < 0.01:
            refunded = received + timedelta(days=rnd.randrange(1, 30))
            self._emit(
                refunded,
                "payment.refunded",
                {
                    "refund_id": self._next_id("ref"),
                    "payment_id": payment_id,
                    "amount": rnd.randrange(1, gross + 1),
                    "refunded_on": refunded.isoformat(),
                }
                | self._rate(currency),
            )
        return True

    def _credit_note(
        self, invoice_id: str, currency: str, on: date, amounts: dict[str, int] | None
    ) -> None:
        """A credit note of `amounts` by line id; `None` credits what is left of every line."""
        data: dict[str, Any] = {
            "credit_note_id": self._next_id("cn"),
            "invoice_id": invoice_id,
            "issue_date": on.isoformat(),
        }
        if amounts is not None:
            data["lines"] = [{"line_id": key, "amount": value} for key, value in amounts.items()]
        self._emit(on, "credit_note.issued", data | self._rate(currency))

    def _split_credits(
        self, invoice_id: str, currency: str, after: date, lines: dict[str, _Line]
    ) -> None:
        """Credit the usage line whole in two or three parts, a few days apart after `after`;
        the last part is sometimes a credit note without lines, which also credits what is left
        of the plan's line."""
        rnd = self._random
        usage = lines["2"]
        parts = rnd.choice((2, 2, 3))
        cuts = sorted(rnd.sample(range(1, usage.net), parts - 1))
        amounts = [b - a for a, b in zip([0, *cuts], [*cuts, usage.net], strict=True)]
        whole_last = rnd.random() < 0.3
        on = after
        for number, amount in enumerate(amounts, start=1):
            on += timedelta(days=rnd.randrange(1, 5))
            if number == len(amounts) and whole_last:
                self._credit_note(invoice_id, currency, on, None)
                for line in lines.values():
                    if line.net > line.credited:
                        line.credit(line.net - line.credited)
            else:
                self._credit_note(invoice_id, currency, on, {"2": amount})
                usage.credit(amount)


def generate(
    customers: int = 500, *, months: int = 36, seed: int = 1, start: date = date(2023, 1, 1)
) -> list[dict[str, Any]]:
    """The events of a generated business, in append order."""
    return list(Business(customers=customers, months=months, seed=seed, start=start).events())
