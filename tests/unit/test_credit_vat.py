"""A credit note's VAT (docs/specification.md §2 as amended): `rhu(amount × vat_rate)` per credited line, except the
credit that completes a line, which carries what is left of the line's VAT; worked out once by
the invoice and recorded on the event, so that a line credited in parts leaves no VAT behind."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import JSONTranscoder, StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from subledger.adapters.store import store_env
from subledger.adapters.store.mapper import PlainJSONMapper
from subledger.domain.invoice import Invoice
from subledger.domain.ledger import Entry, Ledger
from subledger.projections.engine import Rows
from subledger.projections.journal import ENTRIES, JournalProjection
from subledger.projections.outbox import OutboxProjection, messages_after
from tests.builders import append, credit_note, customer, invoice, line


def half_up(amount: int, rate: str) -> int:
    """`rhu(amount × rate)` for amounts and rates >= 0, in plain integer arithmetic."""
    exact = Fraction(amount) * Fraction(rate)
    return (2 * exact.numerator + exact.denominator) // (2 * exact.denominator)


def recorded(ledger: Ledger) -> list[list[tuple[str, int, int | None]]]:
    """Each credit note's credited lines as its event records them: line, net, VAT."""
    return [
        [(c.line_id, c.amount, c.vat) for c in entry.event.credited]  # type: ignore[attr-defined]
        for entry in ledger.iter_entries(ledger.last_position(), (Invoice.CreditNoteIssued,))
    ]


@pytest.fixture
def books() -> Iterator[Ledger]:
    ledger = Ledger(store_env("memory://"))
    append(ledger, customer())
    yield ledger
    ledger.close()


def test_two_halves_of_a_line_carry_the_contracts_12_50_and_12_51(books: Ledger) -> None:
    append(books, invoice(lines=(line(unit_amount=10002),)))
    append(books, credit_note("cn1", lines=(("1", 5001),)))
    append(books, credit_note("cn2", lines=(("1", 5001),)))
    assert recorded(books) == [[("1", 5001, 1250)], [("1", 5001, 1251)]]


def test_the_completing_credit_may_carry_less_than_its_own_rounded_vat(books: Ledger) -> None:
    # 100.01 at 25% has VAT 25.00; 0.02 carries rhu(0.005) = 0.01, so 99.99 carries 24.99
    # where rhu(99.99 × 25%) would be 25.00.
    append(books, invoice(lines=(line(unit_amount=10001),)))
    append(books, credit_note("cn1", lines=(("1", 2),)))
    append(books, credit_note("cn2", lines=(("1", 9999),)))
    assert recorded(books) == [[("1", 2, 1)], [("1", 9999, 2499)]]


def test_a_credit_note_without_lines_after_a_partial_one_completes_every_line(
    books: Ledger,
) -> None:
    append(
        books,
        invoice(lines=(line(unit_amount=10002), line(unit_amount=333, product_id="usage"))),
    )
    append(books, credit_note("cn1", lines=(("1", 5001),)))
    append(books, credit_note("cn2"))
    # Line 1: VAT rhu(2500.5) = 2501, 1250 credited first, 1251 left. Line 2: rhu(83.25) = 83.
    assert recorded(books) == [[("1", 5001, 1250)], [("1", 5001, 1251), ("2", 333, 83)]]


def test_one_credit_note_crediting_two_lines_works_each_out_on_its_own(books: Ledger) -> None:
    append(books, invoice(lines=(line(unit_amount=10002), line(unit_amount=10002))))
    append(books, credit_note("cn1", lines=(("1", 5001), ("2", 10002))))
    assert recorded(books) == [[("1", 5001, 1250), ("2", 10002, 2501)]]


@st.composite
def split_lines(draw: st.DrawFn) -> tuple[int, str, int, list[int]]:
    """An invoice line (unit amount, VAT rate, discount) and its net split into credits."""
    unit_amount = draw(st.integers(1, 10**9))
    vat_rate = draw(st.sampled_from(["0", "0.25", "0.125", "0.07", "0.333333", "0.999999"]))
    discount = draw(st.integers(0, unit_amount - 1))
    net = unit_amount - discount
    cuts = draw(st.lists(st.integers(1, max(net - 1, 1)), max_size=min(net - 1, 8), unique=True))
    bounds = [0, *sorted(cuts), net]
    return unit_amount, vat_rate, discount, [b - a for a, b in itertools.pairwise(bounds)]


@settings(max_examples=150, deadline=None)
@given(split_lines())
def test_the_credits_of_a_whole_line_carry_exactly_its_vat(
    case: tuple[int, str, int, list[int]],
) -> None:
    unit_amount, vat_rate, discount, parts = case
    ledger = Ledger(store_env("memory://"))
    issued = line(unit_amount=unit_amount, vat_rate=vat_rate, discount_amount=discount or None)
    append(ledger, customer(), invoice(lines=(issued,)))
    for number, amount in enumerate(parts):
        append(ledger, credit_note(f"cn{number}", lines=(("1", amount),)))
    vats = [credits[0][2] for credits in recorded(ledger)]
    ledger.close()
    net = unit_amount - discount
    assert None not in vats
    assert sum(v for v in vats if v is not None) == half_up(net, vat_rate)
    assert vats[:-1] == [half_up(amount, vat_rate) for amount in parts[:-1]]


def test_an_event_stored_before_the_vat_was_recorded_reads_back_without_it(
    books: Ledger,
) -> None:
    append(books, invoice(lines=(line(unit_amount=10002),)))
    append(books, credit_note("cn1", lines=(("1", 5001),)))
    append(books, credit_note("cn2", lines=(("1", 5001),)))
    old = stored_without_vat(last_credit_note(books))
    assert [(c.line_id, c.amount, c.vat) for c in old.credited] == [("1", 5001, None)]
    assert old.exchange_rate is None
    assert [c.vat_at(Decimal("0.25")) for c in old.credited] == [half_up(5001, "0.25")]


def test_old_credit_notes_are_read_by_the_rule_they_were_booked_by(books: Ledger) -> None:
    # Before VAT was recorded, the second half of 100.02 at 25% was booked with
    # rhu(50.01 × 25%) = 12.50, not the 12.51 it would carry now: every reader keeps to that.
    append(books, invoice(lines=(line(unit_amount=10002),)))
    append(books, credit_note("cn1", lines=(("1", 5001),)))
    append(books, credit_note("cn2", lines=(("1", 5001),)))
    entries = list(books.iter_entries(books.last_position(), OutboxProjection.event_types))
    old = stored_without_vat(entries[-1].event)
    entries[-1] = Entry(entries[-1].position, old)

    aggregate: Any = None
    for entry in entries[1:]:
        event: Any = entry.event
        aggregate = event.mutate(aggregate)
    assert aggregate.lines["1"].credited_vat == 1250 + 1250

    journal = JournalProjection()
    outbox = OutboxProjection()
    books_rows, outbox_rows = Rows(), Rows()
    for entry in entries:
        outbox.fold(outbox_rows, entry)
        if isinstance(entry.event, journal.event_types):
            journal.fold(books_rows, entry)
    credit_entry = [row for _, row in books_rows.scan(ENTRIES) if row["kind"] == "credit_note"]
    assert [line[:3] for line in credit_entry[-1]["lines"] if line[0] == "output_vat"] == [
        ["output_vat", "", 1250]
    ]
    payload = messages_after(outbox_rows, 0, 10)[-1]["payload"]
    assert (payload["vat"], payload["lines"][0]["vat"], payload["exchange_rate"]) == (
        1250,
        1250,
        None,
    )


def last_credit_note(ledger: Ledger) -> Any:
    credit_notes = ledger.iter_entries(ledger.last_position(), (Invoice.CreditNoteIssued,))
    return [entry.event for entry in credit_notes][-1]


def stored_without_vat(event: Any) -> Any:
    """`event` (a credit note) as one stored before credits recorded their VAT, and before
    `exchange_rate` existed, reads back."""
    mapper = PlainJSONMapper(transcoder=JSONTranscoder())
    stored = mapper.to_stored_event(event)
    state = orjson.loads(stored.state)
    for credit in state["credited"]:
        del credit["vat"]
    del state["exchange_rate"]
    old = StoredEvent(
        stored.originator_id, stored.originator_version, stored.topic, orjson.dumps(state)
    )
    return mapper.to_domain_event(old)
