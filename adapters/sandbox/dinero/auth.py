"""Tokens: the password grant of Dinero's personal integrations, and the bearer check."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import parse_qs

from fastapi import Response

from subledger.adapters.sandbox.dinero.envelope import DineroError, ErrorCode
from subledger.adapters.sandbox.dinero.state import DineroStore, Grant
from subledger.adapters.sandbox.fields import dumps

OAUTH_PATH: Final = "/dineroapi/oauth/token"

SCOPES: Final = ("read", "write")


def _oauth_error(status: int, error: str, description: str, **headers: str) -> Response:
    body = dumps({"error": error, "error_description": description})
    return Response(
        body, status, {"Cache-Control": "no-store", **headers}, media_type="application/json"
    )


def _client_of(authorization: str | None) -> tuple[str, str] | None:
    """The client id and secret of an `Authorization: Basic` header, or None."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, colon, secret = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (client_id, secret) if colon else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def grant_token(store: DineroStore, authorization: str | None, body: bytes) -> Response:
    """`POST /dineroapi/oauth/token`: the password grant of Dinero's personal integrations.

    The client authenticates with `Authorization: Basic b64(client_id:client_secret)`; the
    form body is `grant_type=password&scope=read write&username=<API key>&password=<API key>`.
    Refusals are OAuth's (RFC 6749 §5.2): 401 `invalid_client`, 400 `unsupported_grant_type`,
    `invalid_grant` (a wrong API key) or `invalid_scope`. No refresh token is issued: the API
    key is the lasting credential, so a client asks again when its token expires."""
    settings = store.settings
    client = _client_of(authorization)
    if client is None or not (
        _same(client[0], settings.client_id) and _same(client[1], settings.client_secret)
    ):
        return _oauth_error(
            401,
            "invalid_client",
            "Authenticate the client with Authorization: Basic b64(client_id:client_secret).",
            **{"WWW-Authenticate": 'Basic realm="dinero"'},
        )
    form = {
        name: values[-1]
        for name, values in parse_qs(body.decode(errors="replace"), keep_blank_values=True).items()
    }
    if "grant_type" not in form:
        return _oauth_error(400, "invalid_request", "grant_type is required.")
    if form["grant_type"] != "password":
        return _oauth_error(400, "unsupported_grant_type", "Only the password grant is served.")
    if not (
        _same(form.get("username", ""), settings.api_key)
        and _same(form.get("password", ""), settings.api_key)
    ):
        return _oauth_error(400, "invalid_grant", "username and password must both be the API key.")
    scopes = (form.get("scope") or " ".join(SCOPES)).split()
    if not scopes or any(scope not in SCOPES for scope in scopes):
        return _oauth_error(400, "invalid_scope", "The scope is read, write or both.")
    token = secrets.token_urlsafe(32)
    with store.lock:
        now = store.clock()
        store.tokens = {key: grant for key, grant in store.tokens.items() if grant.expires > now}
        store.tokens[token] = Grant(
            now + timedelta(seconds=settings.token_seconds), frozenset(scopes)
        )
        store.tokens_issued += 1
    answer = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": settings.token_seconds,
        "scope": " ".join(sorted(set(scopes), key=SCOPES.index)),
    }
    return Response(
        dumps(answer), 200, {"Cache-Control": "no-store"}, media_type="application/json"
    )


def authenticate(store: DineroStore, authorization: str | None, now: datetime) -> Grant:
    """The grant of a request's `Authorization: Bearer` token; 401 with code 41 without one,
    with an unknown one or with an expired one."""
    challenge = {"WWW-Authenticate": 'Bearer realm="dinero"'}
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DineroError(
            401,
            ErrorCode.UNAUTHORIZED,
            "Send Authorization: Bearer <access token>.",
            headers=challenge,
        )
    grant = store.tokens.get(token.strip())
    if grant is None:
        raise DineroError(
            401, ErrorCode.UNAUTHORIZED, "The access token is not valid.", headers=challenge
        )
    if grant.expires <= now:
        raise DineroError(
            401,
            ErrorCode.UNAUTHORIZED,
            "The access token has expired; ask for a new one.",
            headers=challenge,
        )
    return grant
