"""The catalogue of error codes (`api.http.errors.ErrorCode`): the same codes, with the same
statuses, in docs/api.md; the codes of the ledger's own refusals among them; the OpenAPI
document's refusals described from it; and each code answered with its status."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException

from subledger.api.http.app import create_app
from subledger.api.http.errors import ApiError, ErrorCode
from subledger.api.settings import Settings
from subledger.domain.errors import LedgerError

API_PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
SECRET = "every-scope-secret-0123456789"
KEYS = f"everything:{SECRET}:events:write+read+admin"


def documented_table() -> dict[str, str]:
    """docs/api.md's table of error codes: code → status, as the page writes them."""
    text = API_PAGE.read_text()
    table = text.split("<!-- error codes -->\n", 1)[1].split("<!-- /error codes -->", 1)[0]
    rows = table.strip().splitlines()[2:]
    documented: dict[str, str] = {}
    for row in rows:
        status, code, meaning = (cell.strip() for cell in row.strip("|").split("|", 2))
        assert re.fullmatch(r"`[A-Z_]+`", code), row
        assert meaning, row
        assert code.strip("`") not in documented, f"{code} is listed twice"
        documented[code.strip("`")] = status
    return documented


def catalogued(code: ErrorCode) -> str:
    return "other" if code.status is None else str(code.status)


def test_the_api_page_lists_every_code_of_the_catalogue_and_no_other() -> None:
    documented = documented_table()
    in_catalogue = {code.name: catalogued(code) for code in ErrorCode}
    assert sorted(set(in_catalogue) - set(documented)) == [], "codes missing from docs/api.md"
    assert sorted(set(documented) - set(in_catalogue)) == [], "docs/api.md lists unknown codes"
    assert documented == in_catalogue


def test_every_code_the_api_page_mentions_is_in_the_catalogue_with_its_status() -> None:
    text = API_PAGE.read_text()
    with_status = re.findall(r"`(\d{3}) ([A-Z][A-Z_]+)`", text)
    in_answers = re.findall(r'"code": "([A-Z][A-Z_]+)"', text)
    named = [
        token
        for token in re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`", text)
        if not token.startswith("SUBLEDGER_")
    ]
    assert len(with_status) >= 5 and in_answers and named
    catalogue = {code.name: code for code in ErrorCode}
    for status, name in with_status:
        assert name in catalogue, name
        assert catalogue[name].status == int(status), f"`{status} {name}`"
    for name in [*in_answers, *named]:
        assert name in catalogue, name


def refusal_classes(base: type[LedgerError]) -> list[type[LedgerError]]:
    found = []
    for subclass in base.__subclasses__():
        found += [subclass, *refusal_classes(subclass)]
    return found


def test_every_refusal_of_the_ledger_has_a_code_in_the_catalogue() -> None:
    refusals = refusal_classes(LedgerError)
    assert len(refusals) >= 5
    for refusal in refusals:
        assert refusal.code in ErrorCode.__members__, refusal.__name__


def test_an_api_error_answers_with_its_codes_status() -> None:
    assert ApiError(ErrorCode.CURRENCY_REQUIRED, "name one").status == 422
    assert ApiError(ErrorCode.SYNC_UNAVAILABLE, "no database").status == 409
    assert ApiError(ErrorCode.NOT_CAUGHT_UP, "retry").status == 503
    with pytest.raises(ValueError, match="HTTP_ERROR"):
        ApiError(ErrorCode.HTTP_ERROR, "a status of its own")


def error_answers(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(operation, status, description) of every refusal the document describes."""
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref", "").endswith("/ErrorAnswer"):
                    found.append((f"{method.upper()} {path}", status, answer["description"]))
    return found


def test_the_openapi_documents_refusals_are_described_from_the_catalogue() -> None:
    document = create_app(Settings(database_url="memory://", api_keys=KEYS)).openapi()
    answers = error_answers(document)
    assert len(answers) > 60
    catalogue = {code.name: code for code in ErrorCode}
    for operation, status, description in answers:
        named = [part.split(": ", 1) for part in description.split("; ")]
        codes = [name for name, *_ in named if name in catalogue]
        assert codes, f"{operation} {status}: {description!r} names no code"
        for name in codes:
            assert catalogue[name].status == int(status), f"{operation} {status}: {name}"
    # The refusals a route answers besides its router's are documented at their statuses.
    described = {(operation, status): text for operation, status, text in answers}
    assert "CURRENCY_REQUIRED" in described[("GET /v1/metrics/mrr", "422")]
    assert "INVALID_REQUEST" in described[("GET /v1/metrics/mrr", "422")]
    assert "UNKNOWN_ACCOUNT" in described[("GET /v1/ledger/accounts/{account}", "404")]
    assert "INVALID_CURSOR" in described[("GET /v1/sync/messages", "422")]
    retry = described[("POST /v1/sync/messages/{message_id}/retry", "409")]
    assert "NOT_FAILED" in retry and "SYNC_UNAVAILABLE" in retry
    assert "STORE_UNAVAILABLE" in described[("GET /v1/keys", "503")]


def test_the_frameworks_own_refusals_keep_their_codes_and_statuses() -> None:
    app = create_app(Settings(database_url="memory://", api_keys=KEYS))

    def teapot() -> None:
        raise HTTPException(418, "short and stout")

    app.add_api_route("/teapot", teapot)
    with TestClient(app) as client:
        missing = client.get("/no/such/path")
        wrong_method = client.put("/health")
        other = client.get("/teapot")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "NOT_FOUND")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (
        405,
        "METHOD_NOT_ALLOWED",
    )
    assert other.status_code == 418
    assert other.json() == {
        "error": {"code": "HTTP_ERROR", "message": "short and stout", "details": []}
    }
