"""The kinds of value that the fields of facts hold, each with the rule a submitted value keeps.

A fact (`domain.facts`) and the values inside it (`domain.values`) declare every field with its
kind: `customer_id: Id`, `amount: PositiveAmount`, `period_end: Day | None`. A kind is the field's
type annotated with a `Rule`; `domain.facts` applies the rule of each field of a submitted fact,
naming the field it refuses (`lines[2].unit_amount`). A field typed as a `Literal` takes only its
choices, and needs no rule of its own. Other layers read the same declarations (the HTTP layer
derives the wire format from them), so each kind is declared, and its rule written, once.

The annotations are only metadata: a fact holds plain `str`, `int`, `Decimal` and `date` values,
and `typing.get_type_hints` without `include_extras` reads the plain types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Final

from subledger.domain.countries import is_country
from subledger.domain.dates import Month
from subledger.domain.errors import InvalidEventError
from subledger.domain.money import MAX_AMOUNT_MINOR, is_currency

MAX_ID_LENGTH: Final = 128
MAX_NAME_LENGTH: Final = 255
MAX_DESCRIPTION_LENGTH: Final = 1000
MAX_NUMBER_LENGTH: Final = 64
MAX_EMAIL_LENGTH: Final = 254
MAX_LINES: Final = 500
MAX_INTERVAL_COUNT: Final = 36
MAX_QUANTITY: Final = Decimal(10) ** 9
MAX_DECIMAL_PLACES: Final = 6
MAX_PERIOD_DAYS: Final = 3660
MAX_DISCOUNT_MONTHS: Final = 120
#: An exchange rate is above 0 and below this (units of the target's base currency per unit of
#: the document's currency: 1 KWD is about 22 DKK, 1 JPY about 0.04), with at most
#: `MAX_EXCHANGE_RATE_PLACES` decimals, enough for the base-currency worth of a dong or a rupiah.
MAX_EXCHANGE_RATE: Final = Decimal(10) ** 6
MAX_EXCHANGE_RATE_PLACES: Final = 10
EARLIEST_DATE: Final = date(1970, 1, 1)
LATEST_DATE: Final = date(2199, 12, 31)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
_VAT_NUMBER = re.compile(r"^(\d{8}|[A-Z]{2}[0-9A-Z+*.]{2,13})$")
_EAN = re.compile(r"^\d{13}$")
_METHOD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def refusal(field: str | None, message: str) -> InvalidEventError:
    """A malformed fact's refusal, naming the field (`None`: the data as a whole)."""
    return InvalidEventError(message, field)


def check_id(value: str, field: str) -> None:
    """A sender's id: 1 to 128 characters, no control characters."""
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise refusal(field, f"must be 1 to {MAX_ID_LENGTH} characters")
    if _CONTROL_CHARACTERS.search(value):
        raise refusal(field, "must not contain control characters")


def check_text(value: str, field: str, max_length: int = MAX_NAME_LENGTH) -> None:
    """Text for people: not blank, at most `max_length` characters, no control characters but
    line breaks and tabs."""
    if not value.strip():
        raise refusal(field, "must not be empty")
    if len(value) > max_length:
        raise refusal(field, f"must be at most {max_length} characters")
    if _CONTROL_CHARACTERS.search(value.replace("\n", "").replace("\t", "")):
        raise refusal(field, "must not contain control characters")


def check_amount(value: int, field: str, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise refusal(field, "must be an integer number of minor units")
    low = 1 if positive else 0
    if not low <= value <= MAX_AMOUNT_MINOR:
        raise refusal(field, f"must be between {low} and {MAX_AMOUNT_MINOR} minor units")


def check_date(value: date, field: str) -> None:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise refusal(field, f"must be between {EARLIEST_DATE} and {LATEST_DATE}")


def _decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _check_places(value: Decimal, field: str, places: int) -> None:
    if _decimal_places(value) > places:
        raise refusal(field, f"must have at most {places} decimal places")


class Rule:
    """What a kind of value must be; `check` raises `InvalidEventError` naming `field`."""

    def check(self, value: Any, field: str) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class IdRule(Rule):
    """A sender's id (of an event, a customer, a line, ...)."""

    max_length: int = MAX_ID_LENGTH

    def check(self, value: str, field: str) -> None:
        check_id(value, field)


@dataclass(frozen=True)
class TextRule(Rule):
    max_length: int = MAX_NAME_LENGTH

    def check(self, value: str, field: str) -> None:
        check_text(value, field, self.max_length)


@dataclass(frozen=True)
class AmountRule(Rule):
    """Integer minor units from `low` to `MAX_AMOUNT_MINOR`."""

    low: int = 0

    @property
    def high(self) -> int:
        return MAX_AMOUNT_MINOR

    def check(self, value: int, field: str) -> None:
        check_amount(value, field, positive=self.low > 0)


@dataclass(frozen=True)
class CountRule(Rule):
    """A whole number from `low` to `high`."""

    low: int
    high: int

    def check(self, value: int, field: str) -> None:
        if not self.low <= value <= self.high:
            raise refusal(field, f"must be between {self.low} and {self.high}")


@dataclass(frozen=True)
class CurrencyRule(Rule):
    def check(self, value: str, field: str) -> None:
        if not is_currency(value):
            raise refusal(field, f"{value!r} is not an ISO 4217 currency code")


@dataclass(frozen=True)
class CountryRule(Rule):
    def check(self, value: str, field: str) -> None:
        if not is_country(value):
            raise refusal(field, f"{value!r} is not an ISO 3166 alpha-2 country code")


@dataclass(frozen=True)
class EmailRule(Rule):
    max_length: int = MAX_EMAIL_LENGTH

    def check(self, value: str, field: str) -> None:
        if len(value) > self.max_length or not _EMAIL.match(value):
            raise refusal(field, "is not an e-mail address")


@dataclass(frozen=True)
class VatNumberRule(Rule):
    def check(self, value: str, field: str) -> None:
        if not _VAT_NUMBER.match(value):
            raise refusal(field, "must be a CVR number (8 digits) or an EU VAT number")


@dataclass(frozen=True)
class EanRule(Rule):
    pattern: str = _EAN.pattern

    def check(self, value: str, field: str) -> None:
        if not _EAN.match(value):
            raise refusal(field, "must be 13 digits")


@dataclass(frozen=True)
class MethodRule(Rule):
    """How money is paid: a lower-case name (`card`, `bank_transfer`)."""

    pattern: str = _METHOD.pattern

    def check(self, value: str, field: str) -> None:
        if not _METHOD.match(value):
            raise refusal(field, "must be a lower-case name such as card or bank_transfer")


@dataclass(frozen=True)
class DayRule(Rule):
    def check(self, value: date, field: str) -> None:
        check_date(value, field)


@dataclass(frozen=True)
class MonthRule(Rule):
    def check(self, value: Month, field: str) -> None:
        check_date(value.first_day, field)


@dataclass(frozen=True)
class QuantityRule(Rule):
    def check(self, value: Decimal, field: str) -> None:
        if not value.is_finite() or not Decimal(0) < value <= MAX_QUANTITY:
            raise refusal(field, f"must be a decimal greater than 0 and at most {MAX_QUANTITY}")
        _check_places(value, field, MAX_DECIMAL_PLACES)


@dataclass(frozen=True)
class VatRateRule(Rule):
    def check(self, value: Decimal, field: str) -> None:
        if not value.is_finite() or not Decimal(0) <= value < Decimal(1):
            raise refusal(field, "must be a decimal in [0, 1)")
        _check_places(value, field, MAX_DECIMAL_PLACES)


@dataclass(frozen=True)
class FractionRule(Rule):
    """A share of a whole: above 0, at most 1 (`0.20` is 20%)."""

    def check(self, value: Decimal, field: str) -> None:
        if not (value.is_finite() and Decimal(0) < value <= Decimal(1)):
            raise refusal(field, "must be a decimal in (0, 1]")


@dataclass(frozen=True)
class ExchangeRateRule(Rule):
    def check(self, value: Decimal, field: str) -> None:
        if not value.is_finite() or not Decimal(0) < value < MAX_EXCHANGE_RATE:
            raise refusal(field, f"must be a decimal greater than 0 and below {MAX_EXCHANGE_RATE}")
        _check_places(value, field, MAX_EXCHANGE_RATE_PLACES)


@dataclass(frozen=True)
class ManyRule(Rule):
    """1 to `MAX_LINES` of something (`what`: "lines", "items"), each checked by its own kind."""

    what: str
    max_length: int = MAX_LINES

    def check(self, value: tuple[object, ...], field: str) -> None:
        if not 1 <= len(value) <= self.max_length:
            raise refusal(field, f"must hold 1 to {self.max_length} {self.what}")


Id = Annotated[str, IdRule()]
Name = Annotated[str, TextRule()]
Description = Annotated[str, TextRule(MAX_DESCRIPTION_LENGTH)]
#: A document's or a customer's number in the sender's books.
Number = Annotated[str, TextRule(MAX_NUMBER_LENGTH)]
Amount = Annotated[int, AmountRule()]
PositiveAmount = Annotated[int, AmountRule(low=1)]
Currency = Annotated[str, CurrencyRule()]
Country = Annotated[str, CountryRule()]
Email = Annotated[str, EmailRule()]
VatNumber = Annotated[str, VatNumberRule()]
Ean = Annotated[str, EanRule()]
Method = Annotated[str, MethodRule()]
Day = Annotated[date, DayRule()]
Period = Annotated[Month, MonthRule()]
Quantity = Annotated[Decimal, QuantityRule()]
VatRate = Annotated[Decimal, VatRateRule()]
Fraction = Annotated[Decimal, FractionRule()]
ExchangeRate = Annotated[Decimal, ExchangeRateRule()]
IntervalCount = Annotated[int, CountRule(1, MAX_INTERVAL_COUNT)]
