"""Money: integer minor units with an ISO 4217 currency, and the one rounding rule.

Amounts are `int` minor units (øre, cents) everywhere inside the ledger. Decimal strings only
appear at the edges (quantities and rates arrive as decimal strings; Billy and Dinero take major
units), and every product or division is done exactly with `Fraction`, rounded only by `rhu`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal
from fractions import Fraction

#: The largest amount, in minor units, that any single event may carry (10^15 - 1: a thousand
#: billion kroner). It keeps every sum the ledger forms far inside a 64-bit integer.
MAX_AMOUNT_MINOR = 10**15 - 1


def rhu(value: Fraction | int) -> int:
    """Round half away from zero: `rhu(2.5) = 3`, `rhu(-2.5) = -3`, `rhu(2.4) = 2`."""
    if isinstance(value, int):
        return value
    quotient, remainder = divmod(abs(value.numerator), value.denominator)
    if 2 * remainder >= value.denominator:
        quotient += 1
    return quotient if value.numerator >= 0 else -quotient


def exact(value: Decimal | int) -> Fraction:
    """The exact rational value of a decimal (no binary floating point on the way)."""
    return Fraction(value)


#: Wide enough that a product of an amount and a quantity or a rate is exact (no rounding).
_EXACT = Context(prec=80, rounding=ROUND_HALF_UP)
_ONE = Decimal(1)


def _rhu_product(amount_minor: int, factor: Decimal) -> int:
    # ROUND_HALF_UP rounds ties away from zero, which is `rhu`; the product itself is exact.
    return int(_EXACT.multiply(Decimal(amount_minor), factor).quantize(_ONE, context=_EXACT))


def extended_amount(quantity: Decimal, unit_amount_minor: int) -> int:
    """`rhu(quantity × unit_amount)`: a line's or an item's amount before discounts."""
    return _rhu_product(unit_amount_minor, quantity)


def vat_of(net_minor: int, vat_rate: Decimal) -> int:
    """`rhu(net × vat_rate)`: the VAT on a net amount (docs/specification.md §2)."""
    return _rhu_product(net_minor, vat_rate)


def credit_vat(
    amount_minor: int,
    vat_rate: Decimal,
    *,
    line_net: int,
    line_vat: int,
    credited_net: int,
    credited_vat: int,
) -> int:
    """The VAT of a credit of `amount_minor` on an invoice line (docs/specification.md §2).

    `line_net` and `line_vat` are the line's own; `credited_net` and `credited_vat` what earlier
    credits took from it. The credit that brings the credited net up to the whole net carries
    what is left of the line's VAT, so a line credited in parts leaves no VAT behind (100.02 at
    25% has VAT 25.01: credited 50.01 + 50.01, the credits carry 12.50 and 12.51); any other
    credit carries `rhu(amount × vat_rate)`. Where many small credits each rounded up, what is
    left can be well below the completing credit's own rounded VAT, even negative.
    """
    if credited_net + amount_minor == line_net:
        return line_vat - credited_vat
    return vat_of(amount_minor, vat_rate)


# Active ISO 4217 codes and their minor-unit exponents (fund and precious-metal codes excluded).
CURRENCY_EXPONENTS: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "ANG": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2,
    "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2,
    "BOB": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2, "CDF": 2,
    "CHF": 2, "CLP": 0, "CNY": 2, "COP": 2, "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0,
    "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2,
    "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2,
    "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0,
    "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2, "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0,
    "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3,
    "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2,
    "MVR": 2, "MWK": 2, "MXN": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2,
    "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2,
    "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2,
    "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2,
    "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2, "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2,
    "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2, "UGX": 0, "USD": 2, "UYU": 2, "UZS": 2, "VES": 2,
    "VND": 0, "VUV": 0, "WST": 2, "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0, "XPF": 0, "YER": 2,
    "ZAR": 2, "ZMW": 2, "ZWG": 2,
}  # fmt: skip


def is_currency(code: str) -> bool:
    """Whether `code` is an active ISO 4217 currency code (upper case, e.g. `DKK`)."""
    return code in CURRENCY_EXPONENTS


def to_major(amount_minor: int, currency: str) -> Decimal:
    """The amount in major units as an exact decimal (`12345` DKK is `123.45`), for the edges."""
    return Decimal(amount_minor).scaleb(-CURRENCY_EXPONENTS[currency])


def to_minor(amount_major: Decimal | int, currency: str) -> int:
    """An amount in major units (an exact decimal read off a target's answer) in minor units of
    `currency`, rounded half away from zero where it holds finer fractions (`123.45` DKK is
    `12345`; `1500` JPY is `1500`; `12.3456` KWD is `12346`)."""
    return rhu(Fraction(amount_major) * 10 ** CURRENCY_EXPONENTS[currency])
