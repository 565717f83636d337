"""Turning a `POST /v1/events` body into the ledger's submissions, or refusing it precisely.

Every malformed event of a batch is reported at once (index and field), and nothing is appended.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Any, Final, NoReturn, Union

import orjson
from pydantic import TypeAdapter, ValidationError

from subledger.api.http.errors import ApiError, ErrorCode
from subledger.api.http.schemas.documents import ANY_EVENT, EVENT_BATCH
from subledger.api.http.schemas.events import EVENT_DATA
from subledger.domain.ledger import Submission

MAX_BATCH_EVENTS: Final = 1000

#: A body (a batch or one event) validated from its JSON bytes in one pass, each `data` into
#: its fact and canonical JSON (`schemas.events.WireData`); the facts' values are the ledger's
#: to check. A body it refuses is read again, part by part, to say precisely what is wrong.
_BODY: TypeAdapter[Any] = TypeAdapter(Union[EVENT_BATCH, ANY_EVENT])  # type: ignore[arg-type]  # noqa: UP007
_BATCH: TypeAdapter[Any] = TypeAdapter(EVENT_BATCH)
_SINGLE: TypeAdapter[Any] = TypeAdapter(ANY_EVENT)


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _details(error: ValidationError, batch: bool) -> list[dict[str, Any]]:
    """Pydantic's errors as refusal details. A location is ("events", index, type tag, field...)
    in a batch, (type tag, field...) for a single event; the tag is missing when the type itself
    is missing or unknown."""
    details = []
    for problem in error.errors(include_url=False, include_input=False):
        location = problem["loc"][1:] if batch else (0, *problem["loc"])
        index, *rest = location
        if problem["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field, message = "type", f"must be one of {', '.join(EVENT_DATA)}"
        else:
            field = _path(tuple(rest[1:])) or "event"
            message = problem["msg"].removeprefix("Value error, ")
        details.append(
            {"index": index, "field": field, "code": "INVALID_EVENT", "message": message}
        )
    return details


def _invalid(details: list[dict[str, Any]]) -> ApiError:
    first = details[0]
    return ApiError(
        ErrorCode.INVALID_EVENT,
        f"event {first['index']}: {first['field']}: {first['message']}; nothing was appended",
        details,
    )


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(ErrorCode.INVALID_JSON, f"the body is not JSON: {error}") from None


def _malformed(field: str, message: str) -> ApiError:
    """A body whose shape is wrong as a whole (not one of its events)."""
    return _invalid([{"index": 0, "field": field, "code": "INVALID_EVENT", "message": message}])


def _events_of(payload: Any) -> list[Any]:
    """The events of a body, checking its shape: a batch or a single event."""
    if not isinstance(payload, dict):
        raise _malformed("event", 'the body is an event or {"events": [...]}')
    if "events" not in payload:
        return [payload]
    unknown = sorted(set(payload) - {"events"})
    if unknown:
        raise _malformed(unknown[0], "a batch holds only `events`")
    if not isinstance(payload["events"], list):
        raise _malformed("events", "must be a list of events")
    events: list[Any] = payload["events"]
    return events


def parse_submissions(body: bytes) -> list[Submission]:
    """Parse and check the shape of every event; raise `ApiError` (400, 413, 422) if any is off.

    A well-formed body is parsed once, straight into its events' facts; only a body refused
    there is parsed again to find what to say."""
    try:
        parsed = _BODY.validate_json(body)
    except ValidationError:
        return _refuse(body)
    events = getattr(parsed, "events", None)  # a batch's; one event has none
    return _submissions([parsed] if events is None else events)


def _refuse(body: bytes) -> NoReturn:
    """Raise the precise refusal of a body the one-pass validation refused."""
    payload = _parse(body)
    events = _events_of(payload)
    if len(events) > MAX_BATCH_EVENTS:
        raise ApiError(
            ErrorCode.BATCH_TOO_LARGE,
            f"a batch holds at most {MAX_BATCH_EVENTS} events; this one has {len(events)}",
        )
    if not events:
        raise _malformed("events", f"a batch holds 1 to {MAX_BATCH_EVENTS} events")
    batch = isinstance(payload, dict) and "events" in payload
    try:
        (_BATCH if batch else _SINGLE).validate_json(body)
    except ValidationError as error:
        raise _invalid(_details(error, batch)) from None
    # Refused as a whole but not in its parts (orjson and pydantic disagree on the JSON).
    raise _malformed("event", 'the body is an event or {"events": [...]}') from None


def _submissions(envelopes: list[Any]) -> list[Submission]:
    return [
        Submission(
            event_id=envelope.id,
            fact=envelope.data.fact,
            digest=sha256(envelope.type.encode() + b"\n" + envelope.data.canonical_json).digest(),
            occurred_at=envelope.occurred_at,
        )
        for envelope in envelopes
    ]
