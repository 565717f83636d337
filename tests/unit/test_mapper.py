"""Stored events come back exactly as they were saved, for every kind of event."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import orjson
import pytest
from eventsourcing.persistence import JSONTranscoder, MapperDeserialisationError, StoredEvent

from subledger.adapters.store import store_env
from subledger.adapters.store.mapper import PlainJSONMapper
from subledger.api.http.examples import EXAMPLE_EVENTS
from subledger.api.http.ingest import parse_submissions
from subledger.domain.ledger import Ledger
from subledger.domain.values import CLEARED


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    ledger = Ledger(store_env("memory://"))
    ledger.append(parse_submissions(orjson.dumps({"events": EXAMPLE_EVENTS})))
    yield ledger
    ledger.close()


def test_every_example_event_reads_back_equal_to_what_was_saved(ledger: Ledger) -> None:
    mapper = PlainJSONMapper(transcoder=JSONTranscoder())
    for logged in ledger.read_log(0, 100):
        stored = mapper.to_stored_event(logged.event)
        assert mapper.to_domain_event(stored) == logged.event
        assert type(mapper.to_domain_event(stored)) is type(logged.event)


def test_a_removed_field_reads_back_as_removed(ledger: Ledger) -> None:
    changed = next(e.event for e in ledger.read_log(0, 100) if e.event.event_id == "evt_0011")  # type: ignore[attr-defined]
    assert changed.discount is CLEARED  # type: ignore[attr-defined]
    assert (
        b'"discount":{"__cleared__":true}'
        in PlainJSONMapper(transcoder=JSONTranscoder()).to_stored_event(changed).state
    )


def test_the_stored_form_is_plain_json(ledger: Ledger) -> None:
    issued = ledger.read_log(2, 1)[0].event
    state = orjson.loads(PlainJSONMapper(transcoder=JSONTranscoder()).to_stored_event(issued).state)
    assert state["issue_date"] == "2026-01-15"
    assert state["lines"][0]["quantity"] == "1"
    assert state["lines"][0]["period_end"] == "2026-02-15"


def test_a_state_that_does_not_fit_its_class_is_refused_with_the_event_named(
    ledger: Ledger,
) -> None:
    issued = ledger.read_log(2, 1)[0].event
    mapper = PlainJSONMapper(transcoder=JSONTranscoder())
    stored = mapper.to_stored_event(issued)
    broken = StoredEvent(
        stored.originator_id,
        stored.originator_version,
        stored.topic,
        stored.state.replace(b'"2026-01-15"', b'"15/01/2026"'),
    )
    with pytest.raises(MapperDeserialisationError, match=r"Invoice\.Issued"):
        mapper.to_domain_event(broken)


def test_a_stored_value_object_missing_a_field_or_with_an_unknown_one_is_refused() -> None:
    from subledger.adapters.store.mapper import _converter
    from subledger.domain.values import InvoiceLine

    convert = _converter(InvoiceLine)
    assert convert is not None
    line = {"product_id": "p", "quantity": "2", "unit_amount": 100, "vat_rate": "0.25"}
    made = convert(line)
    assert made == InvoiceLine(
        product_id="p", quantity=Decimal("2"), unit_amount=100, vat_rate=Decimal("0.25")
    )
    with pytest.raises(TypeError, match="missing \\['vat_rate'\\]"):
        convert({key: value for key, value in line.items() if key != "vat_rate"})
    with pytest.raises(TypeError, match="unknown \\['colour'\\]"):
        convert({**line, "colour": "red"})
