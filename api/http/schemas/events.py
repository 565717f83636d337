"""The event catalogue on the wire (docs/specification.md §1.2), derived from the domain's facts.

Each fact's declaration (`domain.facts.declared_fields`) gives its event type's `data` model:
a field for each of the fact's, in its order, typed by its kind as JSON carries it (a string,
an integer, an array, an object with a model of its own such as `LineIn`; a date as
`YYYY-MM-DD`, a decimal or a month as a string; `null` where the field is optional). A model
checks that shape only: types, required and unknown fields, the form of dates, decimals and
months. What a value must be is the domain's rule, checked once, when the ledger takes the facts
(`Fact.check`); the OpenAPI document shows each kind's rule as far as JSON Schema says it
(`_SHOWN`), and what it says of some fields and models (`_ABOUT`, `_MODEL_DOCS`).

Validated, an event's `data` is a `WireData`: its fact, and its canonical JSON. Where `null`
removes a field (a field whose kind may be `CLEARED`: in `customer.updated`, and
`subscription.changed`'s `discount`), the fact holds `CLEARED`, and the event's other optional
fields cannot be `null`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Final, NamedTuple, Self

import pydantic_core
from pydantic import AfterValidator, Field, create_model, model_validator

from subledger.api.http.schemas.types import (
    DecimalString,
    IsoDate,
    MonthString,
    Shown,
    WireModel,
)
from subledger.domain import facts, values
from subledger.domain.dates import Month
from subledger.domain.errors import InvalidEventError
from subledger.domain.facts import FACT_TYPES, FieldKind, declared_fields
from subledger.domain.fields import (
    AmountRule,
    CountRule,
    CountryRule,
    CurrencyRule,
    EanRule,
    EmailRule,
    ExchangeRateRule,
    IdRule,
    ManyRule,
    MethodRule,
    TextRule,
    VatNumberRule,
)
from subledger.domain.values import CLEARED

#: How JSON carries a field of each type, besides strings and integers as they are, lists as
#: arrays and values as objects.
_FORMS: Final[dict[Any, Any]] = {
    str: str,
    int: int,
    Decimal: DecimalString,
    date: IsoDate,
    Month: MonthString,
}

#: What the document shows of each kind's rule (`domain.fields`), as JSON Schema keywords; a
#: rule not named here shows only its value's form (a date's, a decimal's).
_SHOWN: Final[dict[type, Callable[[Any], dict[str, Any]]]] = {
    IdRule: lambda rule: {
        "minLength": 1,
        "maxLength": rule.max_length,
        "pattern": r"^[^\x00-\x1f\x7f]+$",
    },
    TextRule: lambda rule: {"minLength": 1, "maxLength": rule.max_length},
    AmountRule: lambda rule: {
        "minimum": rule.low,
        "maximum": rule.high,
        "description": "minor units (øre, cents)" + (", > 0" if rule.low > 0 else ""),
    },
    CountRule: lambda rule: {"minimum": rule.low},
    CurrencyRule: lambda _: {
        "pattern": "^[A-Z]{3}$",
        "description": "ISO 4217 code",
        "examples": ["DKK"],
    },
    CountryRule: lambda _: {"pattern": "^[A-Z]{2}$"},
    EmailRule: lambda rule: {"maxLength": rule.max_length},
    VatNumberRule: lambda _: {"maxLength": 20},
    EanRule: lambda rule: {"pattern": rule.pattern},
    MethodRule: lambda rule: {
        "pattern": rule.pattern,
        "examples": ["card", "bank_transfer", "mobilepay"],
    },
    ExchangeRateRule: lambda _: {
        "description": "units of the accounting target's base currency per unit of the"
        ' document\'s currency, a decimal string > 0 (e.g. "7.4604" for EUR in DKK)',
        "examples": ["7.4604"],
    },
    ManyRule: lambda rule: {"minItems": 1, "maxItems": rule.max_length},
}


@dataclasses.dataclass(frozen=True)
class About:
    """What the document says of one field: its `description`, and keywords of its `value`
    (inside the value's schema, where the field may also be `null`)."""

    description: str | None = None
    value: dict[str, Any] = dataclasses.field(default_factory=dict)


_ABOUT: Final[dict[tuple[type, str], About]] = {
    (facts.CustomerCreated, "country"): About("ISO 3166 alpha-2"),
    (facts.CustomerCreated, "vat_number"): About(value={"description": "CVR or EU VAT"}),
    (facts.CustomerCreated, "ean"): About(value={"description": "required for public"}),
    (facts.SubscriptionStarted, "interval_count"): About("defaults to 1"),
    (facts.SubscriptionChanged, "items"): About("the full new list of items"),
    (facts.SubscriptionCancelled, "effective_date"): About("the first day without service"),
    (facts.InvoiceIssued, "payment_method"): About(
        "how the invoice is expected to be paid; picks the target's payment terms where there"
        " is no due_date"
    ),
    (values.SubscriptionItem, "quantity"): About("decimal string, > 0"),
    (values.SubscriptionItem, "unit_amount"): About("per interval, excluding VAT, in minor units"),
    (values.Discount, "percent"): About('a fraction: "0.20" is 20%'),
    (values.Discount, "duration_in_months"): About("for `repeating`", value={"minimum": 1}),
    (values.InvoiceLine, "line_id"): About('defaults to "1", "2", ...'),
    (values.InvoiceLine, "unit_amount"): About("excluding VAT, in minor units"),
    (values.InvoiceLine, "discount_amount"): About("defaults to 0"),
    (values.InvoiceLine, "vat_rate"): About('in [0, 1), e.g. "0.25"'),
    (values.InvoiceLine, "period_end"): About("exclusive"),
    (values.CreditLine, "amount"): About("net, excluding VAT, in minor units"),
    (facts.PaymentReceived, "source"): About(
        "where the payment was registered first, when an accounting target's books hold it"
    ),
    (facts.PaymentRefunded, "source"): About(
        "where the refund was registered first, when an accounting target's books hold it"
    ),
    (values.PaymentSource, "target"): About("billy, dinero, or the target's configured name"),
    (values.PaymentSource, "reference"): About("the target's id of the payment"),
}

_MODEL_DOCS: Final[dict[type, str]] = {
    facts.CustomerUpdated: "Only the fields to change; `null` removes an optional field"
    " (email, vat_number, ...).",
    facts.SubscriptionChanged: "`discount`: left out keeps the current one, `null` removes it,"
    " an object replaces it.",
    facts.CreditNoteIssued: "Without `lines`, the credit note credits every line's whole"
    " creditable net.",
    values.Discount: "Exactly one of `percent` and `amount_off`. `duration` defaults to `forever`.",
}

#: The models of the values inside facts; a fact's model is named `<Fact>Data`.
_VALUE_MODEL_NAMES: Final[dict[type, str]] = {
    values.Address: "AddressIn",
    values.SubscriptionItem: "ItemIn",
    values.Discount: "DiscountIn",
    values.InvoiceLine: "LineIn",
    values.CreditLine: "CreditLineIn",
    values.PaymentSource: "SourceIn",
}


class WireData(NamedTuple):
    """An event's `data`, validated: the fact, and the data as canonical JSON, which tells a
    retry from another event under the same id."""

    fact: facts.Fact
    canonical_json: bytes


class DataModel(WireModel):
    """The `data` of an event type, or a value inside it, as sent; `DECLARED` is the fact's or
    the value's class, whose declaration the model follows."""

    DECLARED: ClassVar[type]

    def to_domain(self) -> Any:
        """The fact or value the data holds (each field turned into its domain form by the
        conversion its declared kind calls for, found once a model)."""
        data = self.__dict__
        return self.DECLARED(
            **{
                name: value if convert is None or value is None else convert(value)
                for name, convert in _conversions(type(self))
                for value in (data[name],)
            }
        )

    def canonical_json(self) -> bytes:
        """Fields in the model's order, optional fields that are null or left out omitted."""
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)


#: How a field of these types is read from its JSON form (a string); others are as validated.
_DECODE: Final[dict[Any, Callable[[str], Any]]] = {Decimal: Decimal, Month: Month.parse}

Conversion = Callable[[Any], Any] | None


@functools.cache
def _conversions(model: type[DataModel]) -> tuple[tuple[str, Conversion], ...]:
    """Each field of a model with how its validated value becomes the domain's (None: as it
    is), in the declared order."""
    return tuple((name, _conversion(kind)) for name, kind in declared_fields(model.DECLARED))


def _conversion(kind: FieldKind) -> Conversion:
    if kind.item is not None:
        item = _conversion(kind.item)
        if item is None:
            return tuple
        return lambda values: tuple(None if value is None else item(value) for value in values)
    if kind.holds_fields:
        return _nested
    return _DECODE.get(kind.base)


def _nested(value: DataModel) -> Any:
    return value.to_domain()


class UpdateModel(DataModel):
    """The `data` of an update, in which `null` removes a field whose kind may be `CLEARED`,
    so that `null` differs from leaving the field out; no other field can be removed."""

    def to_domain(self) -> Any:
        """The fact or value the data holds, with `CLEARED` in each field sent as `null`."""
        value = super().to_domain()
        cleared = {
            name: CLEARED
            for name, kind in declared_fields(self.DECLARED)
            if kind.removable and self._is_null(name)
        }
        return dataclasses.replace(value, **cleared) if cleared else value

    @model_validator(mode="after")
    def _removes_only_what_may_be_removed(self) -> Self:
        for name, kind in declared_fields(self.DECLARED):
            if kind.optional and not kind.removable and self._is_null(name):
                raise ValueError(f"{name} can be changed but not removed")
        return self

    def _is_null(self, name: str) -> bool:
        return name in self.model_fields_set and getattr(self, name) is None

    def canonical_json(self) -> bytes:
        """Keys sorted, a removed field as `null`, other null fields omitted."""
        data = self.model_dump(mode="json", exclude_none=True)
        data.update(
            (name, None)
            for name, kind in declared_fields(self.DECLARED)
            if kind.removable and self._is_null(name)
        )
        return pydantic_core.to_json(_sorted(data))


def _sorted(value: Any) -> Any:
    """JSON data with the keys of its objects sorted."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _wire_type(kind: FieldKind, about: dict[str, Any]) -> Any:
    """How JSON carries a field of this kind, with what the document shows of it."""
    wire: Any
    if kind.choices:
        wire = Annotated[str, Shown(enum=list(kind.choices))]
    elif kind.item is not None:
        wire = list[_wire_type(kind.item, {})]  # type: ignore[misc]
    elif kind.holds_fields:
        wire = model_of(kind.base)
    else:
        wire = _FORMS[kind.base]
    show_rule = _SHOWN.get(type(kind.rule))
    shown = {**(show_rule(kind.rule) if show_rule else {}), **about}
    if shown:
        wire = Annotated[wire, Shown(**shown)]
    return wire | None if kind.optional else wire


_MODELS: Final[dict[type, type[DataModel]]] = {}


def model_of(declared: type) -> type[DataModel]:
    """The wire model of a fact's or a value's class (one model for each)."""
    model = _MODELS.get(declared)
    if model is None:
        model = _MODELS[declared] = _derived_model(declared)
    return model


def _derived_model(declared: type) -> type[DataModel]:
    kinds = declared_fields(declared)
    fields: dict[str, Any] = {}
    for name, kind in kinds:
        about = _ABOUT.get((declared, name), About())
        default = None if kind.optional else ...
        described = about.description
        field = Field(default) if described is None else Field(default, description=described)
        fields[name] = (_wire_type(kind, about.value), field)
    model: type[DataModel] = create_model(
        _VALUE_MODEL_NAMES.get(declared, f"{declared.__name__}Data"),
        __base__=UpdateModel if any(kind.removable for _, kind in kinds) else DataModel,
        __doc__=_MODEL_DOCS.get(declared),
        **fields,
    )
    model.DECLARED = declared
    return model


def _validated(data: DataModel) -> WireData:
    return WireData(data.to_domain(), data.canonical_json())


#: The `data` model of each event type, in the catalogue's order.
DATA_MODELS: Final = {type_name: model_of(fact) for type_name, fact in FACT_TYPES.items()}

#: What each event type's `data` validates as: its model, giving a `WireData`.
EVENT_DATA: Final[dict[str, Any]] = {
    type_name: Annotated[model, AfterValidator(_validated)]
    for type_name, model in DATA_MODELS.items()
}


def _sender_id(value: str) -> str:
    try:
        IdRule().check(value, "id")
    except InvalidEventError as error:
        raise ValueError(error.message) from None
    return value


#: An event's own id (the idempotency key), which is in no fact: checked here, by the domain's
#: rule for a sender's ids.
EventId = Annotated[str, AfterValidator(_sender_id), Shown(**_SHOWN[IdRule](IdRule()))]
