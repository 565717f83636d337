"""Turning a `POST /v1/events` body into the ledger's submissions, or refusing it precisely.

Every malformed event of a batch is reported at once (index and field), and nothing is appended.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from pydantic import ValidationError

from api.errors import ApiError
from api.schemas.events import DATA_MODELS, EventEnvelope
from api.wire import data_of, digest
from domain.ledger import Submission

MAX_BATCH_EVENTS: Final = 1000


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _details(index: int, error: ValidationError, prefix: str) -> list[dict[str, Any]]:
    details = []
    for problem in error.errors(include_url=False, include_input=False):
        path = _path(problem["loc"])
        field = f"{prefix}.{path}" if prefix and path else (prefix or path or "event")
        message = problem["msg"].removeprefix("Value error, ")
        details.append(
            {"index": index, "field": field, "code": "INVALID_EVENT", "message": message}
        )
    return details


def _invalid(details: list[dict[str, Any]]) -> ApiError:
    first = details[0]
    return ApiError(
        422,
        "INVALID_EVENT",
        f"event {first['index']}: {first['field']}: {first['message']}; nothing was appended",
        details,
    )


def _events_of(body: bytes) -> list[Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, "INVALID_JSON", f"the body is not JSON: {error}") from None
    if isinstance(payload, dict) and "events" in payload:
        if len(payload) != 1:
            unknown = sorted(set(payload) - {"events"})
            raise _invalid(
                [
                    {
                        "index": 0,
                        "field": unknown[0],
                        "code": "INVALID_EVENT",
                        "message": "a batch holds only `events`",
                    }
                ]
            )
        events = payload["events"]
        if not isinstance(events, list):
            raise _invalid(
                [
                    {
                        "index": 0,
                        "field": "events",
                        "code": "INVALID_EVENT",
                        "message": "must be a list of events",
                    }
                ]
            )
        return events
    if isinstance(payload, dict):
        return [payload]
    raise _invalid(
        [
            {
                "index": 0,
                "field": "event",
                "code": "INVALID_EVENT",
                "message": 'the body is an event or {"events": [...]}',
            }
        ]
    )


def parse_submissions(body: bytes) -> list[Submission]:
    """Parse and check the shape of every event; raise `ApiError` (400, 413, 422) if any is off."""
    events = _events_of(body)
    if len(events) > MAX_BATCH_EVENTS:
        raise ApiError(
            413,
            "BATCH_TOO_LARGE",
            f"a batch holds at most {MAX_BATCH_EVENTS} events; this one has {len(events)}",
        )
    if not events:
        raise _invalid(
            [
                {
                    "index": 0,
                    "field": "events",
                    "code": "INVALID_EVENT",
                    "message": f"a batch holds 1 to {MAX_BATCH_EVENTS} events",
                }
            ]
        )
    submissions: list[Submission] = []
    details: list[dict[str, Any]] = []
    for index, raw in enumerate(events):
        try:
            envelope = EventEnvelope.model_validate(raw)
        except ValidationError as error:
            details.extend(_details(index, error, ""))
            continue
        model = DATA_MODELS.get(envelope.type)
        if model is None:
            details.append(
                {
                    "index": index,
                    "field": "type",
                    "code": "INVALID_EVENT",
                    "message": f"unknown event type {envelope.type[:64]!r}; "
                    f"known: {', '.join(DATA_MODELS)}",
                }
            )
            continue
        try:
            data = model.model_validate(envelope.data)
        except ValidationError as error:
            details.extend(_details(index, error, "data"))
            continue
        fact = data.to_fact()
        submissions.append(
            Submission(
                event_id=envelope.id,
                fact=fact,
                digest=digest(envelope.type, data_of(fact)),
                occurred_at=envelope.occurred_at,
            )
        )
    if details:
        raise _invalid(details)
    return submissions
