"""What the sandboxes' apps share in their routes.

Every method reaches an API's dispatcher (`ALL_METHODS`), which answers 405 itself where one is
not allowed. The `/_sandbox` routes that change a setting (faults, exchange rates, brownouts)
read a JSON object (`json_object`) and refuse what they cannot take in one shape
(`settings_refused`), naming each problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from fastapi import Request, Response
from pydantic import ValidationError

from subledger.adapters.sandbox.fields import dumps

ALL_METHODS: Final = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def json_answer(body: Any, status: int = 200) -> Response:
    """`body` as a JSON answer (money in major units, as `fields.dumps` writes it)."""
    return Response(dumps(body), status_code=status, media_type="application/json")


async def json_object(request: Request) -> dict[str, Any] | None:
    """The request's body when it is a JSON object; None when it is anything else."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def validation_problems(error: ValidationError) -> dict[str, str]:
    """pydantic's refusal of settings as problems by field (dotted for a nested one)."""
    return {
        ".".join(str(part) for part in problem["loc"]) or "body": problem["msg"]
        for problem in error.errors()
    }


def settings_refused(message: str, problems: Mapping[str, str]) -> Response:
    """422 naming what was wrong with the settings sent; nothing changed."""
    body = {"errorCode": "VALIDATION_ERROR", "errorMessage": message, "validationErrors": problems}
    return json_answer(body, 422)
