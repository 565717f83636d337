"""Properties of sealing (docs/specification.md §6), on the memory store: a box opens with its own key and customer
only; any story of a customer's creation, updates and erasure reads back, event by event and as
of every position, as the plain fold of what was sent, or as erased once it is."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subledger.adapters.store import store_env
from subledger.adapters.store.sealing import SealingError, open_box, seal
from subledger.adapters.sync.personal_details import ERASED_NAME, PersonalDetails
from subledger.api.http.event_data import logged_data, sealing_keys
from subledger.api.http.ingest import parse_submissions
from subledger.domain.ledger import Ledger
from subledger.domain.personal import PERSONAL_FIELDS

TEXT = st.text(alphabet="abcæøå ÆØÅ-", min_size=1, max_size=12).filter(str.strip)
EMAIL = st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.dk", fullmatch=True)
ADDRESS = st.fixed_dictionaries({"street": TEXT, "zip": st.just("8000"), "city": TEXT})
OPTIONAL = {
    "email": EMAIL,
    "vat_number": st.from_regex(r"\d{8}", fullmatch=True),
    "ean": st.from_regex(r"\d{13}", fullmatch=True),
    "address": ADDRESS,
    "customer_number": st.from_regex(r"[0-9]{1,6}", fullmatch=True),
}
CREATED = st.fixed_dictionaries(
    {"name": TEXT, "country": st.just("DK"), "kind": st.just("company")},
    optional=OPTIONAL,
)
#: An update sets some fields and removes (null) some optional ones.
UPDATED = st.fixed_dictionaries(
    {},
    optional={
        "name": TEXT,
        **{name: st.one_of(st.none(), value) for name, value in OPTIONAL.items()},
    },
)
STEP = st.one_of(st.tuples(st.just("update"), UPDATED), st.just(("erase", {})))


@given(
    fields=st.dictionaries(st.sampled_from(PERSONAL_FIELDS), TEXT, max_size=5),
    customer_id=st.text(min_size=1, max_size=20),
)
def test_a_box_opens_with_its_key_and_customer_only(
    fields: dict[str, Any], customer_id: str
) -> None:
    key = secrets.token_bytes(32)
    box = seal(fields, customer_id, key)
    assert open_box(box, customer_id, key) == fields
    with pytest.raises(SealingError):
        open_box(box, customer_id, secrets.token_bytes(32))
    with pytest.raises(SealingError):
        open_box(box, customer_id + "x", key)


def _fold(before: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    after = dict(before)
    for name, value in update.items():
        if value is None:
            after.pop(name, None)
        else:
            after[name] = value
    return after


@settings(max_examples=60, deadline=None)
@given(created=CREATED, steps=st.lists(STEP, max_size=6))
def test_any_customer_story_reads_back_as_sent_or_as_erased(
    created: dict[str, Any], steps: list[tuple[str, dict[str, Any]]]
) -> None:
    ledger = Ledger(store_env("memory://"))
    try:
        sent = [{"id": "e0", "type": "customer.created", "data": {"customer_id": "c", **created}}]
        for number, (what, update) in enumerate(steps, start=1):
            if what == "erase":
                sent.append(
                    {"id": f"e{number}", "type": "customer.erased", "data": {"customer_id": "c"}}
                )
                break
            if update:
                data = {"customer_id": "c", **update}
                sent.append({"id": f"e{number}", "type": "customer.updated", "data": data})
        ledger.append(parse_submissions(orjson.dumps({"events": sent})))
        erased = sent[-1]["type"] == "customer.erased"

        logged = ledger.read_log(0, 100)
        keys = sealing_keys(ledger, (entry.event for entry in logged))
        details = PersonalDetails(ledger)
        profile: dict[str, Any] = {}
        for event, entry in zip(sent, logged, strict=True):
            data = logged_data(entry.event, keys)
            if event["type"] == "customer.erased":
                assert data == event["data"]
                continue
            personal = {k: v for k, v in event["data"].items() if k in PERSONAL_FIELDS}
            profile = _fold(profile, personal)
            if erased:
                # What an update removed stays said: a removal holds no personal data.
                kept = {
                    k: v for k, v in event["data"].items() if k not in PERSONAL_FIELDS or v is None
                }
                assert data == {**kept, "erased": True}
                assert details.personal("c", entry.position) == {
                    "name": ERASED_NAME,
                    "erased": True,
                }
            else:
                assert data == event["data"]
                assert details.personal("c", entry.position) == profile
        assert ledger.append(parse_submissions(orjson.dumps({"events": sent})))[0].appended is False
    finally:
        ledger.close()
