"""`/v1/keys`: the API keys, listed, made and revoked over HTTP (the `admin` scope), as
`subledger keys list|create|revoke` does on the command line. A new key's secret is in the
answer that makes it and nowhere else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from subledger.adapters.api_keys import ApiKeyStore, StoredApiKey
from subledger.api.api_keys import (
    ApiKeyRing,
    InvalidKeyError,
    KeyConflictError,
    KeyNotFoundError,
    create_key,
    describe_keys,
    revoke_key,
)
from subledger.api.http.auth import AdminKey
from subledger.api.http.dependencies import ApiKeyRingDep
from subledger.api.http.errors import ApiError, ErrorCode
from subledger.api.http.responses import OrjsonResponse, iso_instant
from subledger.api.http.schemas.documents import refusals

router = APIRouter(
    prefix="/v1/keys",
    tags=["keys"],
    responses=refusals(ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN, ErrorCode.STORE_UNAVAILABLE),
)

Scope = Literal["events:write", "read", "admin"]
KeyName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class KeyRequest(BaseModel):
    """A key to make: its name and its scopes."""

    model_config = ConfigDict(extra="forbid")

    name: KeyName
    scopes: list[Scope] = Field(min_length=1, max_length=3)


class KeyDescription(BaseModel):
    name: str
    source: Literal["environment", "database"] = Field(
        description="`environment`: SUBLEDGER_API_KEYS; `database`: made with subledger keys"
    )
    key_id: str | None = Field(description="the id inside the secret (`sk_<key id>_...`)")
    scopes: list[Scope]
    created_at: datetime | None
    revoked_at: datetime | None


class KeyList(BaseModel):
    keys: list[KeyDescription]


class NewKey(KeyDescription):
    secret: str = Field(description="the key to send as `Authorization: Bearer`: shown only here")


def _store(ring: ApiKeyRing) -> ApiKeyStore:
    if ring.store is None:
        raise ApiError(ErrorCode.STORE_UNAVAILABLE, "the key store is not open yet: retry")
    return ring.store


def _shown(described: dict[str, Any]) -> dict[str, Any]:
    return {
        **described,
        "created_at": iso_instant(described["created_at"]),
        "revoked_at": iso_instant(described["revoked_at"]),
    }


def _one(key: StoredApiKey) -> dict[str, Any]:
    return _shown(describe_keys(ApiKeyRing(()), [key])[0])


@router.get(
    "",
    summary="Every API key, from the environment and made here; never a secret",
    response_model=KeyList,
)
def list_keys(_: AdminKey, ring: ApiKeyRingDep) -> OrjsonResponse:
    return OrjsonResponse({"keys": [_shown(k) for k in describe_keys(ring, _store(ring).all())]})


@router.post(
    "",
    summary="Make an API key: its secret is in this answer only",
    status_code=201,
    response_model=NewKey,
    responses=refusals(ErrorCode.KEY_EXISTS, ErrorCode.INVALID_REQUEST),
)
def make_key(_: AdminKey, ring: ApiKeyRingDep, wanted: KeyRequest) -> OrjsonResponse:
    try:
        key, secret = create_key(_store(ring), ring, wanted.name, wanted.scopes, datetime.now(UTC))
    except InvalidKeyError as error:
        raise ApiError(ErrorCode.INVALID_REQUEST, str(error)) from None
    except KeyConflictError as error:
        raise ApiError(ErrorCode.KEY_EXISTS, str(error)) from None
    return OrjsonResponse(
        {**_one(key), "secret": secret},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


@router.delete(
    "/{name}",
    summary="Revoke a key made here; it stops working within SUBLEDGER_KEY_CACHE_SECONDS",
    response_model=KeyDescription,
    responses=refusals(ErrorCode.NOT_FOUND, ErrorCode.KEY_IN_ENVIRONMENT),
)
def revoke(
    _: AdminKey, ring: ApiKeyRingDep, name: Annotated[str, Path(max_length=64)]
) -> OrjsonResponse:
    try:
        revoked = revoke_key(_store(ring), ring, name, datetime.now(UTC))
    except KeyNotFoundError as error:
        raise ApiError(ErrorCode.NOT_FOUND, str(error)) from None
    except KeyConflictError as error:
        raise ApiError(ErrorCode.KEY_IN_ENVIRONMENT, str(error)) from None
    return OrjsonResponse(_one(revoked))
