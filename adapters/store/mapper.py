"""Stored events as plain JSON, read back by the event classes' own type hints.

The library's JSON transcoders tag every date, decimal and value object
(`{"_type_": "date_iso", "_data_": "2026-01-15"}`) and so must walk every value of every event
they read, in Python. This mapper writes events with orjson as plain JSON (dates as ISO
strings, decimals as strings, value objects as objects) and reads them back through converters
compiled once per event class from its type hints: a `date` field is parsed as a date, a
`tuple[InvoiceLine, ...]` as a tuple of lines, and fields that need nothing get nothing. On the
same events, reading took 8 µs instead of 13 and writing 6 instead of 11; reading is what
projections and rebuilds do all day. `class_version` and the `upcast_vN_vM` methods work as
with the library's mapper.

`CLEARED` (an optional field that an update removes) is written as `{"__cleared__": true}`.

A customer event's personal fields are written sealed under the customer's key
(`to_sealed_stored_event`, see `adapters.store.sealing`); read back, they hold `SEALED` until
opened where they are shown.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from subledger.adapters.store.sealing import (
    has_personal_fields,
    reseal_state,
    seal_state,
    unseal_state,
)
from subledger.domain.personal import is_personal
from subledger.domain.values import CLEARED, Cleared

Converter = Callable[[Any], Any]
_CLEARED_MARK = "__cleared__"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Cleared):
        return {_CLEARED_MARK: True}
    raise TypeError(f"{type(value).__name__} cannot be stored in an event")


class PlainJSONMapper(Mapper[UUID]):
    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        """An event as stored; a customer event only if it was read back sealed (its box is
        written again as it is): a new one is sealed with `to_sealed_stored_event`."""
        return self._stored(domain_event, None)

    def to_sealed_stored_event(self, domain_event: Any, key: bytes) -> StoredEvent:
        """A customer event with its personal fields sealed under its customer's `key`."""
        return self._stored(domain_event, key)

    def _stored(self, domain_event: DomainEventProtocol[UUID], key: bytes | None) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        if "sealed" in state:
            reseal_state(state)
        elif key is not None:
            seal_state(state, key)
        elif is_personal(domain_event) and has_personal_fields(state):
            raise TypeError("a customer's personal fields are stored sealed with its key")
        stored_state = orjson.dumps(state, default=_default)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=stored_state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        stored_state = stored_event.state
        try:
            if self.cipher:
                stored_state = self.cipher.decrypt(stored_state)
            if self.compressor:
                stored_state = self.compressor.decompress(stored_state)
            state: dict[str, Any] = orjson.loads(stored_state)
            class_version = getattr(cls, "class_version", 1)
            from_version = state.pop("class_version", 1)
            while from_version < class_version:
                getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
                from_version += 1
            sealed = state.pop("sealed", None)
            for name, convert in _field_converters(cls):
                value = state.get(name)
                if value is not None:
                    state[name] = convert(value)
            if sealed is not None:
                state["sealed"] = sealed
                unseal_state(state)
        except Exception as error:
            raise MapperDeserialisationError(
                f"cannot read the event {stored_event.originator_id} "
                f"v{stored_event.originator_version} ({stored_event.topic}): {error}"
            ) from error
        originator_id = stored_event.originator_id
        state["originator_id"] = (
            originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        )
        state["originator_version"] = stored_event.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return typing.cast(DomainEventProtocol[UUID], event)


@cache
def _field_converters(cls: type) -> tuple[tuple[str, Converter], ...]:
    """For each field of an event class that needs converting from JSON, its converter."""
    hints = typing.get_type_hints(cls)
    converters = []
    for field in dataclasses.fields(cls):
        if field.name in ("originator_id", "originator_version"):
            continue
        convert = _converter(hints[field.name])
        if convert is not None:
            converters.append((field.name, convert))
    return tuple(converters)


def _converter(annotation: Any) -> Converter | None:
    """How to turn the JSON form of a value of type `annotation` back into it (`None`: as is)."""
    origin = typing.get_origin(annotation)
    if annotation in (str, int, bool, type(None), Any) or origin is typing.Literal:
        return None
    if origin in (typing.Union, types.UnionType):
        return _union_converter([a for a in typing.get_args(annotation) if a is not type(None)])
    if origin is tuple:
        item = _converter(typing.get_args(annotation)[0])
        if item is None:
            return tuple
        return lambda values: tuple(item(value) for value in values)
    if origin is dict or annotation is dict:
        return None
    if annotation is date:
        return date.fromisoformat
    if annotation is datetime:
        return datetime.fromisoformat
    if annotation is Decimal:
        return Decimal
    if annotation is UUID:
        return UUID
    if annotation is Cleared:
        return lambda _: CLEARED
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _dataclass_converter(annotation)
    raise TypeError(f"no JSON form for fields of type {annotation!r}")


def _union_converter(members: list[Any]) -> Converter | None:
    """`X | None` converts as `X`; with `Cleared` among the members, its mark is told apart."""
    others = [member for member in members if member is not Cleared]
    if len(others) > 1:
        raise TypeError(f"cannot tell apart the JSON forms of {members!r}")
    inner = _converter(others[0]) if others else None
    if len(others) == len(members):
        return inner

    def convert(value: Any) -> Any:
        if isinstance(value, dict) and _CLEARED_MARK in value:
            return CLEARED
        return value if inner is None else inner(value)

    return convert


def _dataclass_converter(cls: type) -> Converter:
    """A value object back from its JSON form: its fields set directly, as `to_domain_event`
    sets an event's (the values were checked when the event was appended; a frozen
    dataclass's `__init__` costs a call of `object.__setattr__` a field)."""
    hints = typing.get_type_hints(cls)
    fields = tuple((field.name, _converter(hints[field.name])) for field in dataclasses.fields(cls))
    defaults = {
        field.name: field.default
        for field in dataclasses.fields(cls)
        if field.default is not dataclasses.MISSING
    }
    if "__slots__" in vars(cls) or any(
        field.default_factory is not dataclasses.MISSING for field in dataclasses.fields(cls)
    ):
        return _initialising_converter(cls, fields)

    known = {name for name, _ in fields}
    required = known - defaults.keys()

    def convert(value: dict[str, Any]) -> Any:
        if not required <= value.keys() <= known:
            missing, unknown = required - value.keys(), value.keys() - known
            raise TypeError(f"{cls.__name__}: missing {sorted(missing)}, unknown {sorted(unknown)}")
        state = dict(defaults)
        for name, field in fields:
            if name in value:
                item = value[name]
                state[name] = item if field is None or item is None else field(item)
        made: Any = object.__new__(cls)
        object.__setattr__(made, "__dict__", state)
        return made

    return convert


def _initialising_converter(
    cls: type, fields: tuple[tuple[str, Converter | None], ...]
) -> Converter:
    """A value object without a `__dict__` (slots) or with default factories, through its
    `__init__`."""

    def convert(value: dict[str, Any]) -> Any:
        return cls(
            **{
                name: value[name] if field is None or value[name] is None else field(value[name])
                for name, field in fields
                if name in value
            }
        )

    return convert
