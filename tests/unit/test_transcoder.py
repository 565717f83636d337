"""Stored events come back exactly as they were saved."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, TranscodingNotRegisteredError

from adapters.store.transcoder import OrjsonTranscoder
from domain.dates import Month
from domain.transcodings import domain_transcodings
from domain.values import CLEARED
from tests.builders import credit_note, discount, invoice, line, subscription


@pytest.fixture
def transcoder() -> OrjsonTranscoder:
    transcoder = OrjsonTranscoder()
    for transcoding in [DecimalAsStr(), DatetimeAsISO(), *domain_transcodings()]:
        transcoder.register(transcoding)
    return transcoder


def test_every_domain_type_round_trips(transcoder: OrjsonTranscoder) -> None:
    state = {
        "when": datetime(2026, 1, 15, 10, 0, tzinfo=UTC),
        "day": date(2026, 2, 28),
        "rate": Decimal("0.250"),
        "month": Month(2026, 1),
        "cleared": CLEARED,
        "items": subscription().items,
        "discount": discount("0.2", duration="once"),
        "lines": invoice(
            lines=(line(period_start=date(2026, 1, 31), period_end=date(2026, 4, 30)), line())
        ).lines,
        "credits": credit_note(lines=(("1", 5),)).lines,
        "nested": {"list": [1, [2, 3]], "none": None},
    }
    decoded = transcoder.decode(transcoder.encode(state))
    assert decoded == {**state, "nested": {"list": (1, (2, 3)), "none": None}}
    assert decoded["cleared"] is CLEARED
    assert isinstance(decoded["lines"], tuple)


def test_an_unregistered_type_is_refused_on_write(transcoder: OrjsonTranscoder) -> None:
    with pytest.raises(TranscodingNotRegisteredError):
        transcoder.encode({"x": object()})


def test_the_stored_format_is_the_librarys_tagged_json(transcoder: OrjsonTranscoder) -> None:
    assert transcoder.encode({"d": date(2026, 1, 2)}) == (
        b'{"d":{"_type_":"date_iso","_data_":"2026-01-02"}}'
    )
