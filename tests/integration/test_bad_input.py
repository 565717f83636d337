"""Abuse of `POST /v1/events` on PostgreSQL: every refusal is a clean 4xx with the contract's
error body, and nothing of a refused request reaches the log.

Hypothesis starts from the valid examples of the OpenAPI document (`api.examples`, a small
business's story, appended first) and breaks them: a field of the wrong type, missing or
unknown; numbers too large, negative or fractional; odd Unicode (NUL, lone surrogates, marks
that turn text right to left, 10,000 characters, emoji); days that do not exist; JSON nested
10,000 deep; batches that are empty, too long or that reuse an id. Whatever it sends, the answer
is never a 5xx; a 4xx leaves the log as it was; a 2xx appended exactly what it says. The bodies
that no strategy should have to find (10 MB, chunked, compressed, not JSON, another content
type) are tried one by one. A valid batch after all of it is still appended.
"""

from __future__ import annotations

import copy
import gzip
import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from subledger.api.http.app import create_app
from subledger.api.http.examples import EXAMPLE_EVENTS
from subledger.api.settings import Settings
from tests.conftest import ADMIN, API_KEYS, READ, WRITE

pytestmark = pytest.mark.postgres

JSON = {**WRITE, "Content-Type": "application/json"}
LIMIT = 5 * 1024 * 1024
_fresh = itertools.count(1)


@pytest.fixture(scope="module")
def api(postgres_database_url: str) -> Iterator[TestClient]:
    """One app on PostgreSQL (a schema of its own) for the whole file, holding the examples'
    story, so that near-valid events meet real customers, invoices and payments."""
    url = f"{postgres_database_url}?schema=t_bad_{uuid.uuid4().hex[:8]}"
    app = create_app(Settings(database_url=url, api_keys=API_KEYS, max_body_bytes=LIMIT))
    with TestClient(app, raise_server_exceptions=False) as client:
        story = client.post("/v1/events", json={"events": EXAMPLE_EVENTS}, headers=WRITE)
        assert story.status_code == 201, story.text
        yield client


def the_log(client: TestClient) -> list[dict[str, Any]]:
    """Every event of the log, as `GET /v1/events` returns them."""
    events: list[dict[str, Any]] = []
    while True:
        after = events[-1]["position"] if events else 0
        page = client.get("/v1/events", params={"after": after, "limit": 1000}, headers=READ)
        assert page.status_code == 200, page.text
        found = page.json()["events"]
        if not found:
            return events
        events.extend(found)


def assert_clean_refusal(answer: Any) -> dict[str, Any]:
    """A 4xx whose body is exactly `{"error": {"code", "message", "details"}}`; its error."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:500])
    assert answer.headers["content-type"] == "application/json"
    body = orjson.loads(answer.content)
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["code"], str) and error["code"].isupper()
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    for detail in error["details"]:
        assert {"field", "message"} <= set(detail) <= {"index", "field", "code", "message"}
    return dict(error)


# -- Bodies with pieces that no JSON encoder writes: raw JSON text in place of a value.


class Raw:
    """JSON text to put in a body as it is (`1e400`, a lone surrogate's escape)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r})"


def encode(value: Any) -> bytes:
    raws: list[Raw] = []

    def mark(item: Any) -> Any:
        if isinstance(item, Raw):
            raws.append(item)
            return f"@@raw{len(raws) - 1}@@"
        if isinstance(item, dict):
            return {key: mark(child) for key, child in item.items()}
        if isinstance(item, list):
            return [mark(child) for child in item]
        return item

    text = json.dumps(mark(value), ensure_ascii=False).encode()  # integers of any size
    for index, raw in enumerate(raws):
        text = text.replace(f'"@@raw{index}@@"'.encode(), raw.text.encode())
    return text


# -- Strategies: near-valid events.

HUGE_NUMBERS = st.sampled_from([10**30, -(10**30), -1, 0, 2**63, 1.5, -0.0, 1e300])
RAW_NUMBERS = st.sampled_from(["1e400", "-1e400", "1E+2", "0.1e1", "100000000000000000000000"])
ODD_TEXT = st.sampled_from(
    [
        "a\x00b",
        "\x00",
        "\u202eevil\u202c",
        "\u200f\u200e",
        "x" * 10_000,
        "😀" * 64,
        "🏳️‍🌈",
        "\ufeff",
        " ",
        "",
        "\n",
        "e\u0301",
        "\uffff",
        "DKK\x7f",
    ]
)
RAW_TEXT = st.sampled_from(['"\\ud800"', '"\\udfff x"', '"a\\u0000b"', '"\\ud83d"'])
BAD_DAYS = st.sampled_from(
    [
        "2026-02-30",
        "0000-01-01",
        "2026-1-1",
        "2026-13-01",
        "9999-12-31",
        "26-01-01",
        "2026-01-01T00:00:00Z",
    ]
)
BAD_INSTANTS = st.sampled_from(
    ["2026-01-15T10:00:00", "2026-02-30T00:00:00Z", "0.5", "2026-01-15T25:00:00Z"]
)
DEEP = st.sampled_from([Raw("[" * 10_000 + "]" * 10_000), Raw('{"a":' * 5_000 + "1" + "}" * 5_000)])
WRONG_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
BAD_VALUES = st.one_of(
    HUGE_NUMBERS,
    RAW_NUMBERS.map(Raw),
    ODD_TEXT,
    RAW_TEXT.map(Raw),
    BAD_DAYS,
    BAD_INSTANTS,
    DEEP,
    WRONG_TYPES,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside an event (keys of objects, indexes of lists)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(paths(child, (*prefix, index)))
    return found


def fresh_id() -> str:
    return f"fuzz_{uuid.uuid4().hex[:8]}_{next(_fresh)}"


def value_at(event: dict[str, Any], path: tuple[Any, ...]) -> Any:
    value: Any = event
    for part in path:
        value = value[part]
    return value


@st.composite
def broken(draw: st.DrawFn, event: dict[str, Any]) -> None:
    """Break one thing of `event`: a text made odd, a number made huge, a day made impossible
    (each where the event has one: its id and every field of its data alike), any value
    given a wrong type or nested deep, a field removed, or one added that it does not have."""
    every = paths(event)
    texts = [path for path in every if isinstance(value_at(event, path), str)]
    numbers = [path for path in every if type(value_at(event, path)) is int]
    action = draw(st.sampled_from(["text", "text", "number", "day", "type", "remove", "extra"]))
    if action == "number" and numbers:
        path, value = draw(st.sampled_from(numbers)), draw(HUGE_NUMBERS | RAW_NUMBERS.map(Raw))
    elif action == "day" and texts:
        path, value = draw(st.sampled_from(texts)), draw(BAD_DAYS | BAD_INSTANTS)
    elif action == "text" and texts:
        path = draw(st.sampled_from(texts))
        odd = draw(ODD_TEXT | RAW_TEXT.map(Raw))
        keep = value_at(event, path)
        value = Raw(json.dumps(keep)[:-1] + odd.text[1:]) if isinstance(odd, Raw) else odd
        value = draw(st.sampled_from([value, keep + odd if isinstance(odd, str) else value]))
    else:
        path, value = draw(st.sampled_from(every)), draw(WRONG_TYPES | DEEP)
    *parents, last = path
    holder = value_at(event, tuple(parents))
    if action == "remove":
        del holder[last]
    elif action == "extra" and isinstance(holder, dict):
        holder[draw(st.sampled_from(["extra", "ID", "data ", "\x00"]))] = value
    elif action == "extra":
        holder.append(value)
    else:
        holder[last] = value


@st.composite
def near_valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """One of the examples under a new id, with one to three things of it broken."""
    event = copy.deepcopy(draw(st.sampled_from(EXAMPLE_EVENTS)))
    event["id"] = fresh_id()
    for _ in range(draw(st.integers(1, 3))):
        draw(broken(event))
    return event


@st.composite
def abusive_bodies(draw: st.DrawFn) -> bytes:
    """A single near-valid event, or a batch of them beside valid ones; a batch may be empty,
    over the limit, or reuse an id for another event."""
    shape = draw(st.sampled_from(["single", "batch", "batch", "empty", "too_many", "reused_id"]))
    if shape == "single":
        return encode(draw(near_valid_events()))
    if shape == "empty":
        return encode({"events": []})
    if shape == "too_many":
        customers = [{**copy.deepcopy(EXAMPLE_EVENTS[0]), "id": fresh_id()} for _ in range(1001)]
        return encode({"events": customers})
    broken = draw(st.lists(near_valid_events(), min_size=1, max_size=3))
    if shape == "reused_id":
        first = copy.deepcopy(EXAMPLE_EVENTS[7])
        second = copy.deepcopy(EXAMPLE_EVENTS[8])
        first["id"] = second["id"] = fresh_id()
        return encode({"events": [first, *broken, second]})
    return encode({"events": broken})


@pytest.mark.slow
@settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=abusive_bodies())
def test_near_valid_events_are_refused_cleanly_or_appended_exactly(
    api: TestClient, body: bytes
) -> None:
    before = the_log(api)
    answer = api.post("/v1/events", content=body, headers=JSON)
    assert answer.status_code < 500, answer.text
    after = the_log(api)
    if answer.status_code >= 400:
        event(f"{answer.status_code} {assert_clean_refusal(answer)['code']}")
        assert after == before
        return
    assert answer.status_code in (200, 201), answer.text
    event(str(answer.status_code))
    results = answer.json()["results"]
    appended = [result for result in results if result["status"] == "appended"]
    assert [(event["id"], event["position"]) for event in after[len(before) :]] == [
        (result["id"], result["position"]) for result in appended
    ]
    assert after[: len(before)] == before


# -- Bodies tried one by one.

A_CUSTOMER = {
    "id": "evt_kept_out",
    "type": "customer.created",
    "data": {"customer_id": "cus_kept_out", "name": "Kept Out", "country": "DK", "kind": "company"},
}
TEN_MB = 10 * 1024 * 1024


def _padded(size: int) -> bytes:
    """A valid event padded with whitespace to `size` bytes: refused for its size alone."""
    text = orjson.dumps(A_CUSTOMER)
    return text + b" " * (size - len(text))


ABUSES: dict[str, tuple[bytes, dict[str, str], int, str]] = {
    "10 MB": (_padded(TEN_MB), JSON, 413, "BODY_TOO_LARGE"),
    "one byte over the limit": (_padded(LIMIT + 1), JSON, 413, "BODY_TOO_LARGE"),
    "not JSON": (b"customer.created cus_kept_out", JSON, 400, "INVALID_JSON"),
    "not UTF-8": (b'{"id": "\xff\xfe"}', JSON, 400, "INVALID_JSON"),
    "empty": (b"", JSON, 400, "INVALID_JSON"),
    "JSON nested 10,000 deep": (b"[" * 10_000 + b"]" * 10_000, JSON, 400, "INVALID_JSON"),
    "a lone surrogate": (
        orjson.dumps(A_CUSTOMER).replace(b"Kept Out", b"\\ud800"),
        JSON,
        400,
        "INVALID_JSON",
    ),
    "1e400": (
        orjson.dumps(A_CUSTOMER).replace(b'"company"', b"1e400"),
        JSON,
        400,
        "INVALID_JSON",
    ),
    "text/plain": (
        orjson.dumps(A_CUSTOMER),
        {**WRITE, "Content-Type": "text/plain"},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    "a form": (
        b"id=evt_kept_out&type=customer.created",
        {**WRITE, "Content-Type": "application/x-www-form-urlencoded"},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    "gzip": (
        gzip.compress(orjson.dumps(A_CUSTOMER)),
        {**JSON, "Content-Encoding": "gzip"},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    "a gzip bomb": (
        gzip.compress(b"[" + b" " * TEN_MB + b"]"),
        {**JSON, "Content-Encoding": "gzip"},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    "1,001 events": (
        orjson.dumps({"events": [{**A_CUSTOMER, "id": f"evt_kept_out_{i}"} for i in range(1001)]}),
        JSON,
        413,
        "BATCH_TOO_LARGE",
    ),
    "no events": (b'{"events": []}', JSON, 422, "INVALID_EVENT"),
    "an id reused in the batch": (
        orjson.dumps(
            {"events": [A_CUSTOMER, {**A_CUSTOMER, "data": {**A_CUSTOMER["data"], "name": "X"}}]}
        ),
        JSON,
        409,
        "EVENT_ID_REUSED",
    ),
    "2026-02-30": (
        orjson.dumps(
            {
                "id": "evt_kept_out",
                "type": "subscription.paused",
                "data": {"subscription_id": "sub_1001", "effective_date": "2026-02-30"},
            }
        ),
        JSON,
        422,
        "INVALID_EVENT",
    ),
}


@pytest.mark.parametrize("name", list(ABUSES))
def test_an_abusive_body_is_refused_cleanly_and_appends_nothing(api: TestClient, name: str) -> None:
    body, headers, status, code = ABUSES[name]
    before = the_log(api)
    answer = api.post("/v1/events", content=body, headers=headers)
    assert answer.status_code == status, answer.text[:500]
    assert assert_clean_refusal(answer)["code"] == code
    assert the_log(api) == before


TEXT_FIELDS = [
    (index, path)
    for index, example in enumerate(EXAMPLE_EVENTS)
    for path in paths(example)
    if isinstance(value_at(example, path), str) and path != ("type",)
]


def test_a_nul_in_any_text_of_any_event_is_refused_cleanly(api: TestClient) -> None:
    """Every text of every example, the event's id included, with a NUL inside: PostgreSQL's
    text and jsonb cannot hold one, so it must never get past the refusal."""
    before = the_log(api)
    for index, path in TEXT_FIELDS:
        event = copy.deepcopy(EXAMPLE_EVENTS[index])
        event["id"] = fresh_id()
        *parents, last = path
        holder = value_at(event, tuple(parents))
        holder[last] = holder[last][:1] + "\x00" + holder[last][1:]
        answer = api.post("/v1/events", json=event, headers=WRITE)
        assert 400 <= answer.status_code < 500, (index, path, answer.text)
        assert_clean_refusal(answer)
    assert the_log(api) == before


BAD_READS = [
    "/v1/events?after=9223372036854775808",
    "/v1/events?after=-1",
    "/v1/events?limit=0",
    "/v1/events?limit=1001",
    "/v1/events?limit=1e3",
    "/v1/metrics/mrr?known_at=0.5",
    "/v1/metrics/mrr?known_at=2026-02-30T00:00:00Z",
    "/v1/metrics/mrr?known_at=2026-01-15T10:00:00",
    "/v1/metrics/mrr?known_at=0001-01-01T00:00:00%2B01:00",
    "/v1/metrics/mrr?position=1000000000000000000000000000000",
    "/v1/metrics/mrr?from=2026-13&to=2027-01",
    "/v1/metrics/mrr?from=1900-01&to=2026-01",
    "/v1/revenue/summary?currency=dkk",
    "/v1/ledger/trial-balance?as_of=2026-02-30",
    "/v1/ledger/trial-balance?as_of=2026-1-1",
    "/v1/ledger/entries?from=2026-01-01&after=not-a-cursor",
    "/v1/ledger/accounts/12345678901",
    "/v1/revenue/schedules/" + "x" * 129,
    "/v1/revenue/schedules/inv%001001",
    "/v1/customers/cus_1001%00/mrr",
    "/v1/audit/customer/%00",
    "/v1/audit/account/cus_1001",
    "/v1/sync/messages?target=billy%00",
    "/v1/sync/messages/%00",
    "/v1/metrics/mrr?currency=DKK%0A",
]


@pytest.mark.parametrize("url", BAD_READS)
def test_a_bad_query_or_path_parameter_is_refused_cleanly(api: TestClient, url: str) -> None:
    answer = api.get(url, headers=READ)
    assert answer.status_code == 422, answer.text
    assert assert_clean_refusal(answer)["code"] in ("INVALID_REQUEST", "INVALID_CURSOR")


@pytest.mark.parametrize(
    "body",
    [
        {"target": "billy", "all": "true"},
        {"target": "billy", "from_date": 0},
        {"target": "billy", "from_date": "2026-02-30"},
        {"target": "billy", "from_position": "1"},
        {"target": "billy", "from_position": 2**63},
        {"target": "billy", "all": True, "extra": 1},
        {"target": "b" * 65, "all": True},
    ],
)
def test_a_bad_replay_is_refused_cleanly(api: TestClient, body: dict[str, Any]) -> None:
    answer = api.post(
        "/v1/sync/replay",
        content=json.dumps(body),
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert assert_clean_refusal(answer)["code"] == "INVALID_REQUEST"


def test_a_chunked_body_over_the_limit_is_refused_before_it_is_read_whole(
    api: TestClient,
) -> None:
    """The app itself, spoken to in ASGI: a body of 10 MB in 64 KiB chunks with no
    Content-Length is refused once the limit is passed, and the rest is never asked for."""
    chunk = b" " * 65536
    asked = 0
    answer: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": asked < TEN_MB}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] = answer.get("body", b"") + message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", WRITE["Authorization"].encode()),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    before = the_log(api)

    async def call() -> None:
        await api.app(scope, receive, send)  # type: ignore[arg-type]

    anyio.run(call)
    assert answer["status"] == 413
    assert orjson.loads(answer["body"])["error"]["code"] == "BODY_TOO_LARGE"
    assert asked <= LIMIT + len(chunk)
    assert the_log(api) == before


def test_a_valid_batch_after_all_of_it_is_still_appended(api: TestClient) -> None:
    before = the_log(api)
    batch = {
        "events": [
            {**A_CUSTOMER, "id": "evt_after_abuse_1"},
            {
                "id": "evt_after_abuse_2",
                "type": "payment.received",
                "data": {
                    "payment_id": "pay_after_abuse",
                    "invoice_id": "inv_1001",
                    "amount": 100,
                    "currency": "DKK",
                    "method": "card",
                    "received_on": "2026-03-01",
                },
            },
        ]
    }
    answer = api.post("/v1/events", json=batch, headers=WRITE)
    assert answer.status_code == 201, answer.text
    after = the_log(api)
    assert [event["id"] for event in after[len(before) :]] == [
        "evt_after_abuse_1",
        "evt_after_abuse_2",
    ]
    assert after[: len(before)] == before
    # The projections folded everything that was appended: nothing of it stopped them.
    read = api.get("/v1/metrics/mrr", params={"from": "2026-01", "to": "2026-12"}, headers=READ)
    assert read.status_code == 200, read.text
    assert read.headers["X-Log-Position"] == str(after[-1]["position"])
