"""Sealing the personal data of customer events written before it was sealed (`subledger seal`).

Such events hold their personal fields in the clear and their log rows a plain digest. Each is
rewritten as the ledger writes one today: its fields sealed with the customer's key (a new key,
written in the same transaction, for a customer that has none yet), its digest keyed. A customer
erased already is sealed with a key that is never written: its data becomes unreadable, as the
erasure meant. Events already sealed are left alone, so running it again does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any, Final

from subledger.adapters.store.sealing import SEALED_KEY
from subledger.domain.customer import Customer
from subledger.domain.facts import FACT_TYPES, Fact
from subledger.domain.ledger import Entry, Ledger
from subledger.domain.personal import logged_digest, new_key
from subledger.domain.ports import Resealed, ResealingStore

#: Events rewritten per transaction.
PAGE: Final = 500


def seal_old_events(ledger: Ledger) -> int:
    """Seal every customer event of the log written in the clear; the number sealed."""
    store = ledger.store
    if not isinstance(store, ResealingStore):
        return 0  # a memory store holds nothing written before sealing
    sealed = 0
    for page in _pages(_unsealed(ledger)):
        customers = {entry.event.customer_id for entry in page}  # type: ignore[attr-defined]
        keys = dict(ledger.sealing_keys(customers))
        new_keys = {c: new_key() for c in customers if c not in keys}
        logged = ledger.store.find_appended(
            [entry.event.event_id for entry in page]  # type: ignore[attr-defined]
        )
        rewritten = []
        for entry in page:
            event: Any = entry.event
            # An erased customer's events are sealed with a key that is never kept.
            key = keys.get(event.customer_id) or new_keys.get(event.customer_id) or new_key()
            prior = logged[event.event_id]
            rewritten.append(
                Resealed(
                    event.originator_id,
                    event.originator_version,
                    entry.position,
                    ledger.sealer.to_sealed_stored_event(event, key).state,
                    logged_digest(_fact(event), prior.digest, key),
                )
            )
        store.reseal(rewritten, new_keys)
        sealed += len(rewritten)
    return sealed


def _unsealed(ledger: Ledger) -> Iterator[Entry]:
    kinds = (Customer.Created, Customer.Updated)
    for entry in ledger.iter_entries(ledger.last_position(), kinds):
        if getattr(entry.event, SEALED_KEY, None) is None:
            yield entry


def _pages(entries: Iterator[Entry]) -> Iterator[list[Entry]]:
    page: list[Entry] = []
    for entry in entries:
        page.append(entry)
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


def _fact(event: Any) -> Fact:
    """The fact a customer event records (its own fields, without the log's)."""
    kind = FACT_TYPES[event.TYPE]
    return kind(**{field.name: getattr(event, field.name) for field in fields(kind)})
