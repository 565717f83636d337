"""The typed event envelopes (one per event type), and the models of the API's answers.

`POST /v1/events` validates a batch against `ANY_EVENT` in one pass (`api.ingest`); the same
models describe the request body in the OpenAPI document, with an example for each type.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from subledger.api.http.errors import ErrorCode, described
from subledger.api.http.examples import EXAMPLE_EVENTS, example_of
from subledger.api.http.schemas.events import EVENT_DATA, EventId
from subledger.api.http.schemas.types import Instant, WireModel


def _envelope_model(type_name: str) -> type[BaseModel]:
    title = "".join(part.capitalize() for part in type_name.replace("_", ".").split("."))
    model: type[BaseModel] = create_model(
        f"{title}Event",
        __base__=WireModel,
        __doc__=f"A `{type_name}` event.",
        id=(EventId, Field(description="the sender's unique id: the idempotency key")),
        type=(Literal[type_name], ...),  # type: ignore[arg-type]
        occurred_at=(Instant | None, Field(default=None, description="when, at the sender")),
        data=(EVENT_DATA[type_name], ...),
    )
    model.model_config["json_schema_extra"] = {"examples": [example_of(type_name)]}
    model.model_rebuild(force=True)
    return model


ENVELOPE_MODELS = {type_name: _envelope_model(type_name) for type_name in EVENT_DATA}

#: Any one event, told apart by its `type`.
ANY_EVENT: Any = Annotated[Union[tuple(ENVELOPE_MODELS.values())], Field(discriminator="type")]  # noqa: UP007

EVENT_BATCH: type[BaseModel] = create_model(
    "EventBatch",
    __base__=WireModel,
    __doc__="1 to 1,000 events, appended whole or not at all, in this order.",
    events=(list[ANY_EVENT], Field(min_length=1, max_length=1000)),
)


def append_request_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON schema of the `POST /v1/events` body and the definitions it refers to."""
    adapter: TypeAdapter[Any] = TypeAdapter(Union[EVENT_BATCH, ANY_EVENT])  # type: ignore[arg-type]  # noqa: UP007
    schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    return schema, definitions


APPEND_EXAMPLES = {
    "batch": {
        "summary": "A batch: a customer, a subscription and its first invoice",
        "value": {"events": EXAMPLE_EVENTS[:3]},
    },
    "single": {"summary": "A single event", "value": EXAMPLE_EVENTS[3]},
}


class AppendResult(BaseModel):
    id: str
    status: Literal["appended", "duplicate"]
    position: int


class AppendAnswer(BaseModel):
    results: list[AppendResult]
    last_position: int


class LoggedEvent(BaseModel):
    position: int
    id: str
    type: str
    occurred_at: str | None
    recorded_at: str
    data: dict[str, Any]


class LogPage(BaseModel):
    events: list[LoggedEvent]


class ErrorDetail(BaseModel):
    index: int | None = Field(default=None, description="the event's index in the batch")
    field: str
    code: str | None = None
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail]


class ErrorAnswer(BaseModel):
    error: ErrorBody


#: The refusals any read may answer.
READ_REFUSALS: tuple[ErrorCode, ...] = (
    ErrorCode.UNAUTHORIZED,
    ErrorCode.FORBIDDEN,
    ErrorCode.INVALID_REQUEST,
    ErrorCode.NOT_CAUGHT_UP,
    ErrorCode.STORE_UNAVAILABLE,
)
#: The refusals any request with a body may answer too.
BODY_REFUSALS: tuple[ErrorCode, ...] = (
    ErrorCode.INVALID_JSON,
    ErrorCode.BODY_TOO_LARGE,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE,
)


def refusals(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route or router that may refuse with these codes: one answer per
    status, described by the catalogue (`api.http.errors.ErrorCode`), its body an
    `ErrorAnswer`. A route's answer for a status replaces its router's: a route that adds a
    code at a status its router lists names the router's codes there too."""
    return {
        status: {"model": ErrorAnswer, "description": description}
        for status, description in described(codes).items()
    }


def document_global_refusals(document: dict[str, Any]) -> None:
    """Document, in the app's OpenAPI `document`, the refusals that every route may answer
    whatever it declares: those of `api.limits` (400, 413, 415) wherever a body is taken, and
    FastAPI's own 422 for a malformed parameter, which `api.errors` answers as an
    `ErrorAnswer` and not as FastAPI's `HTTPValidationError`."""
    answer = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            codes = BODY_REFUSALS if "requestBody" in operation else ()
            for status, description in described(codes).items():
                responses.setdefault(str(status), {"description": description, "content": answer})
            invalid = responses.get("422", {})
            schema = invalid.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref", "").endswith("/HTTPValidationError"):
                invalid_request = described([ErrorCode.INVALID_REQUEST])[422]
                responses["422"] = {"description": invalid_request, "content": answer}
    schemas = document.get("components", {}).get("schemas", {})
    if "/HTTPValidationError" not in json.dumps(document.get("paths", {})):
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)


class HealthAnswer(BaseModel):
    """Whether the store answers, and its kind (`memory`, `sqlite`, `postgresql`): a fact of the
    configuration, not of the data, so it is said without a key."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "unavailable"]
    store: str
