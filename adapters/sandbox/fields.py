"""What the sandboxes share in reading requests and writing answers.

`RequestFields` reads and checks one request object's fields the way both Billy's and Dinero's
sandboxes do: every problem is noted against the field's (prefixed) name and reading goes on, so
that one refusal names all of them. Each sandbox subclasses it with what is its own (Dinero binds
names case-insensitively and reads Guids; Billy looks up the records that ids refer to), so a
fix to field checking made here reaches both.

Money is kept as integer minor units of its currency (`Money`, with the currency's ISO 4217
exponent: DKK 2, JPY 0, KWD 3) and read exactly: a JSON number becomes a fraction by its
shortest decimal form and is rounded half away from zero once, to whole minor units (or refused
where it must already be whole). `dumps` writes it back as a number in major units.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, ClassVar, Final, Self, TypeVar

import orjson

from subledger.domain.money import CURRENCY_EXPONENTS, rhu

Record = dict[str, Any]
T = TypeVar("T")

#: The largest number any field takes, so that no product of two of them gets out of hand.
LARGEST_NUMBER: Final = 10**12

DAY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
CURRENCY: Final = re.compile(r"[A-Z]{3}")
THIRTEEN_DIGITS: Final = re.compile(r"[0-9]{13}")
EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+")

#: What a date that is not written as `YYYY-MM-DD` is told.
MALFORMED_DAY: Final = "must be a date as YYYY-MM-DD"
#: What a well-formed date that is not on the calendar (`2025-02-30`) is told by default.
IMPOSSIBLE_DAY: Final = "must be a real date as YYYY-MM-DD"


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of a currency with `exponent` decimals; written to the wire as
    a number in major units (`Money(12345, 2)` as 123.45, `Money(1500, 0)` as 1500)."""

    minor: int
    exponent: int = 2

    @property
    def major(self) -> Decimal:
        return Decimal(self.minor).scaleb(-self.exponent)


def exponent_of(currency: str | None) -> int:
    """How many decimals `currency` has (ISO 4217); 2 for a code the table does not know."""
    return CURRENCY_EXPONENTS.get(currency or "", 2)


def exact_number(value: Any) -> Fraction | None:
    """A JSON number as an exact fraction (a float by its shortest decimal form), else None.

    `0.1` is the decimal 0.1 here, not the binary float nearest to it, so `0.125` rounds up to
    0.13 as the sender meant. Booleans, strings, infinities and NaN are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return Fraction(value)
    try:
        return Fraction(Decimal(repr(value)))
    except (InvalidOperation, ValueError, OverflowError):
        return None


def parse_day(text: str, impossible: str = IMPOSSIBLE_DAY) -> date:
    """`YYYY-MM-DD` as a date.

    Raises ValueError, with what to tell the sender, for text in any other form and for a day
    not on the calendar (told `impossible`)."""
    if not DAY.fullmatch(text):
        raise ValueError(MALFORMED_DAY)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(impossible) from None


def query_text(value: Any) -> str:
    """A field as a query parameter or filter writes it: booleans as `true`/`false`, numbers as
    their digits, a string as it is, nothing as ""."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def known(value: T | None) -> T:
    """A value that validation has already made sure of."""
    if value is None:
        raise AssertionError("a validated value is missing")
    return value


def wire_default(value: Any) -> Any:
    """orjson's hook for what it cannot write itself: money and rates become numbers."""
    if isinstance(value, Money):
        # A float, as Billy and Dinero answer (`200.5`); its shortest form is the decimal
        # itself for any amount below 10^12 with at most 3 decimals, so no digit is lost.
        return float(value.major)
    if isinstance(value, Decimal | Fraction):
        return float(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(body: Any) -> bytes:
    """`body` as JSON, with `Money` in major units and dataclasses through `wire_default`."""
    return orjson.dumps(body, default=wire_default, option=orjson.OPT_PASSTHROUGH_DATACLASS)


class RequestFields:
    """One request object's fields, read and checked one at a time.

    Every problem is noted in `errors` against the field's name, prefixed for a nested object
    (such as `lines[2].unitPrice`), and only the first problem of a field is kept; reading goes
    on, so that one refusal names all of them. Types are strict: a number sent as a string is a
    problem, so what passes here passes a lenient server too. A reader answers None (or its
    default) for a field that is missing or wrong, so the caller must check `errors` before
    using what it read.

    Subclasses say how a name is looked up (`get`) and add the readers of their own API."""

    #: What a well-formed date that is not on the calendar is told by `day`.
    impossible_day: ClassVar[str] = IMPOSSIBLE_DAY

    def __init__(self, data: Mapping[str, Any], errors: dict[str, str], prefix: str = "") -> None:
        self.data = data
        self.errors = errors
        self.prefix = prefix

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Self:
        """The fields of a request's top-level object, with no problems noted yet."""
        return cls(data, {})

    def nested(self, data: Mapping[str, Any], prefix: str) -> Self:
        """The fields of an object inside this one, noting problems in the same `errors`."""
        return type(self)(data, self.errors, self.prefix + prefix)

    def get(self, name: str) -> Any:
        """The value sent for `name`, or None."""
        return self.data.get(name)

    def given(self, name: str) -> bool:
        return self.get(name) is not None

    def fail(self, name: str, message: str) -> None:
        """Note a problem with a field, unless one is already noted for it."""
        self.errors.setdefault(self.prefix + name, message)

    def text(
        self,
        name: str,
        *,
        required: bool = False,
        numbers: bool = False,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
        max_length: int | None = None,
        default: str | None = None,
    ) -> str | None:
        """A string, matching `pattern` (described to the sender as `hint`) when one is given.

        An empty string counts as missing where the field is required or has a pattern. With
        `numbers`, a whole number is taken as its digits (`"invoiceNo": 7`)."""
        value = self.get(name)
        if numbers and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is None or (value == "" and (required or pattern is not None)):
            if required:
                self.fail(name, "is required")
            return default
        if not isinstance(value, str):
            self.fail(name, "must be a string")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(name, f"must be {hint}")
            return None
        if max_length is not None and len(value) > max_length:
            self.fail(name, f"must be at most {max_length} characters (it is {len(value)})")
            return None
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        default: int | None = None,
        minimum: int | None = None,
    ) -> int | None:
        """A whole number (not a boolean, nor a float such as 1.0)."""
        value = self.get(name)
        if value is None:
            if required:
                self.fail(name, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, "must be a whole number")
            return None
        if minimum is not None and value < minimum:
            self.fail(name, f"must be at least {minimum}")
            return None
        return value

    def number(
        self,
        name: str,
        *,
        required: bool = False,
        default: Fraction | None = None,
        above: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
        nonzero: bool = False,
    ) -> Fraction | None:
        """A number as an exact fraction, at most `LARGEST_NUMBER` in size; `above` is a
        bound it must exceed, `minimum` and `maximum` bounds it may reach."""
        value = self.get(name)
        if value is None:
            if required:
                self.fail(name, "is required")
            return default
        number = exact_number(value)
        if number is None:
            self.fail(name, "must be a number")
        elif abs(number) > LARGEST_NUMBER:
            self.fail(name, f"must be at most {LARGEST_NUMBER:,} in size")
        elif above is not None and number <= above:
            self.fail(name, f"must be more than {above}")
        elif minimum is not None and number < minimum:
            self.fail(name, f"must be at least {minimum}")
        elif maximum is not None and number > maximum:
            self.fail(name, f"must be at most {maximum}")
        elif nonzero and number == 0:
            self.fail(name, "must not be 0")
        else:
            return number
        return None

    def money(
        self,
        name: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        positive: bool = False,
        nonzero: bool = False,
        exponent: int = 2,
        whole: bool = False,
    ) -> int | None:
        """An amount in major units as minor units of a currency with `exponent` decimals,
        rounded half away from zero; with `whole`, an amount with more decimals than the
        currency has is refused instead (money that moved cannot hold a fraction of an øre).

        `minimum` bounds the amount as sent; `positive` and `nonzero` apply once it is rounded
        (0.004 is 0 øre), and are told "must be more than 0" and "must not be 0"."""
        number = self.number(name, required=required, minimum=minimum)
        if number is None:
            return None
        scaled = number * 10**exponent
        if whole and scaled.denominator != 1:
            self.fail(name, f"must have at most {exponent} decimals in its currency")
            return None
        minor = rhu(scaled)
        if positive and minor <= 0:
            self.fail(name, "must be more than 0")
            return None
        if nonzero and minor == 0:
            self.fail(name, "must not be 0")
            return None
        return minor

    def flag(self, name: str, *, required: bool = False, default: bool = False) -> bool:
        """`true` or `false`; `default` when the field is missing or wrong."""
        value = self.get(name)
        if value is None:
            if required:
                self.fail(name, "is required (true or false)")
            return default
        if not isinstance(value, bool):
            self.fail(name, "must be true or false")
            return default
        return value

    def choice(
        self,
        name: str,
        options: Sequence[str],
        *,
        default: str | None = None,
        required: bool = False,
    ) -> str | None:
        """One of `options`, spelled exactly as there."""
        value = self.get(name)
        if value is None:
            if required:
                self.fail(name, "is required")
            return default
        if value not in options:
            self.fail(name, f"must be one of {', '.join(options)}")
            return None
        return str(value)

    def day(self, name: str, *, required: bool = False, default: date | None = None) -> date | None:
        """A real calendar date, sent as `YYYY-MM-DD`."""
        value = self.text(name, required=required)
        if value is None:
            return default
        try:
            return parse_day(value, self.impossible_day)
        except ValueError as error:
            self.fail(name, str(error))
            return None

    def objects(self, name: str, *, required: bool = False) -> list[Mapping[str, Any]] | None:
        """A list of JSON objects (non-empty when required)."""
        value = self.get(name)
        if value is None:
            if required:
                self.fail(name, "is required")
            return None
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.fail(name, "must be a list of objects")
            return None
        if required and not value:
            self.fail(name, "must not be empty")
            return None
        return value
