"""Access over real HTTP, on PostgreSQL: every route of the OpenAPI document answers 401 without
a key, with a wrong key and with a revoked key, 403 with a key of each other scope, and neither
with its own; keys made with `subledger keys create` work beside those of the environment, and
a revoked one stops working in every process of `serve --workers 2` within the cache time."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from bench.harness import server
from subledger.api.api_keys import SCOPES
from subledger.api.http.app import create_app
from subledger.api.http.auth import PUBLIC, route_scopes
from subledger.api.settings import Settings
from tests.e2e.test_server import SUBLEDGER, serving

pytestmark = [pytest.mark.postgres]

#: One environment key per scope, each with that scope alone.
ENVIRONMENT_SECRETS = {
    "events:write": "env-writer-secret-7f3a91c2",
    "read": "env-reader-secret-0b8d44e6",
    "admin": "env-admin-secret-5e21c9aa",
}
ENVIRONMENT_KEYS = ",".join(
    f"env-{scope.split(':')[0]}:{secret}:{scope}" for scope, secret in ENVIRONMENT_SECRETS.items()
)
WRONG = "sk_0123456789abcdef_" + "A" * 43


def subledger(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SUBLEDGER, *arguments], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def make_key(env: dict[str, str], name: str, *scopes: str) -> str:
    """`subledger keys create`: the secret it prints."""
    options = [part for scope in scopes for part in ("--scope", scope)]
    made = subledger(env, "keys", "create", name, *options)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("sk_") and "\n" not in secret
    return secret


@pytest.fixture
def environment(postgres_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": postgres_url,
        "SUBLEDGER_API_KEYS": ENVIRONMENT_KEYS,
        "SUBLEDGER_LOG_LEVEL": "warning",
    }


@pytest.fixture
def made_keys(environment: dict[str, str]) -> dict[str, str]:
    """One key made with `subledger keys create` per scope, and one made and revoked."""
    secrets = {
        scope: make_key(environment, f"made-{scope.split(':')[0]}", scope) for scope in SCOPES
    }
    secrets["revoked"] = make_key(environment, "made-revoked", *SCOPES)
    revoked = subledger(environment, "keys", "revoke", "made-revoked")
    assert revoked.returncode == 0, revoked.stderr
    return secrets


@pytest.fixture
def served(environment: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with serving(tmp_path, environment) as base:
        yield base


def sample(schema: dict[str, Any]) -> str:
    """A value a parameter's schema accepts."""
    schema = next((s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"), schema)
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("type") == "integer" or "[0-9]" in schema.get("pattern", ""):
        return "1"
    return "x1"


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """Each operation of the document: its method, its path template, a URL to call it at and
    the request's other parts (the required query parameters, a JSON body)."""
    for template, item in document["paths"].items():
        for method, operation in item.items():
            url, params = template, {}
            for parameter in operation.get("parameters", []):
                value = sample(parameter["schema"])
                if parameter["in"] == "path":
                    url = url.replace(f"{{{parameter['name']}}}", value)
                elif parameter.get("required"):
                    params[parameter["name"]] = value
            request: dict[str, Any] = {"params": params}
            if "requestBody" in operation:
                request["json"] = {}
            yield method.upper(), template, url, request


def test_every_route_needs_its_scope_and_nothing_else_opens_it(
    served: str, made_keys: dict[str, str]
) -> None:
    scopes = route_scopes(create_app(Settings(database_url="memory://")))
    document = httpx.get(f"{served}/openapi.json", timeout=10).json()
    walked = list(operations(document))
    assert len(walked) >= 20
    checked = 0
    with httpx.Client(base_url=served, timeout=30) as client:

        def call(method: str, url: str, request: dict[str, Any], secret: str | None) -> int:
            parts = dict(request)
            headers = parts.pop("headers", {})
            if secret is not None:
                headers = {**headers, "Authorization": f"Bearer {secret}"}
            answer = client.request(method, url, headers=headers, **parts)
            if answer.status_code in (401, 403):
                assert answer.json()["error"]["code"] in ("UNAUTHORIZED", "FORBIDDEN")
            return answer.status_code

        for method, template, url, request in walked:
            needed = scopes.get((method, template))
            if template in PUBLIC:
                assert call(method, url, request, None) == 200, f"{method} {template} is public"
                continue
            assert needed in SCOPES, f"{method} {template} declares no scope"
            where = f"{method} {template}"
            assert call(method, url, request, None) == 401, f"{where} without a key"
            assert call(method, url, request, "not-a-key-at-all") == 401, f"{where}: wrong key"
            assert call(method, url, request, WRONG) == 401, f"{where}: unknown made key"
            assert call(method, url, request, made_keys["revoked"]) == 401, f"{where}: revoked"
            if "json" in request:  # the key is asked for before a broken body is refused
                broken = {
                    "params": request["params"],
                    "content": b'{"not json',
                    "headers": {"Content-Type": "application/json"},
                }
                assert call(method, url, broken, None) == 401, f"{where}: broken body, no key"
                for other in set(SCOPES) - {needed}:
                    status = call(method, url, broken, ENVIRONMENT_SECRETS[other])
                    assert status == 403, f"{where}: broken body, a key of {other}"
            for other in set(SCOPES) - {needed}:
                assert call(method, url, request, ENVIRONMENT_SECRETS[other]) == 403, (
                    f"{where} with an environment key of {other}"
                )
                assert call(method, url, request, made_keys[other]) == 403, (
                    f"{where} with a made key of {other}"
                )
            for secret in (ENVIRONMENT_SECRETS[needed], made_keys[needed]):
                status = call(method, url, request, secret)
                assert status not in (401, 403) and status < 500, f"{where} with {needed}: {status}"
            checked += 1
    assert checked == len(walked) - 1, "every operation but /health is guarded"
    for path in ("/", "/docs", "/redoc", "/dashboard/currencies.json", "/dashboard/app.js"):
        assert httpx.get(f"{served}{path}", timeout=10).status_code == 200, path


def test_a_revoked_key_stops_working_in_every_server_process_within_the_cache_time(
    environment: dict[str, str], postgres_url: str
) -> None:
    secret = make_key(environment, "nightly", "read")
    env = {**environment, "SUBLEDGER_KEY_CACHE_SECONDS": "1"}
    with (
        server(postgres_url, ENVIRONMENT_KEYS, workers=2, base_env=env) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}) as client,
    ):
        # Fresh connections, so that both processes take requests and remember the key.
        assert all(
            httpx.get(f"{base}/v1/events", headers=client.headers).status_code == 200
            for _ in range(20)
        )
        revoked = subledger(environment, "keys", "revoke", "nightly")
        assert revoked.returncode == 0, revoked.stderr
        assert "revoked key nightly" in revoked.stdout
        started = time.monotonic()
        while httpx.get(f"{base}/v1/events", headers=client.headers).status_code != 401:
            assert time.monotonic() - started < 5, "the revoked key still works after 5 s"
            time.sleep(0.05)
        time.sleep(1.1)  # every process's memory of the key has expired by now
        statuses = {
            httpx.get(f"{base}/v1/events", headers=client.headers).status_code for _ in range(20)
        }
        assert statuses == {401}


def test_keys_are_kept_hashed_listed_without_secrets_and_names_are_never_shared(
    environment: dict[str, str], postgres_url: str, tmp_path: Path
) -> None:
    secret = make_key(environment, "billing", "events:write", "read")
    url, _, schema = postgres_url.partition("?schema=")
    with psycopg.connect(url) as connection:
        kept = str(connection.execute(f'SELECT * FROM "{schema}".subledger_api_keys').fetchall())
    assert hashlib.sha256(secret.encode()).hexdigest() in kept
    assert secret[len("sk_0123456789abcdef_") :] not in kept, "only the key id and a hash"
    clash = subledger(environment, "keys", "create", "env-read", "--scope", "read")
    assert clash.returncode == 1 and "SUBLEDGER_API_KEYS" in clash.stderr
    again = subledger(environment, "keys", "create", "billing", "--scope", "read")
    assert again.returncode == 1 and "exists" in again.stderr

    listed = subledger(environment, "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    keys = {key["name"]: key for key in orjson.loads(listed.stdout)["keys"]}
    assert keys["billing"]["source"] == "database" and keys["billing"]["revoked_at"] is None
    assert keys["billing"]["scopes"] == ["events:write", "read"]
    assert keys["env-read"]["source"] == "environment"
    table = subledger(environment, "keys", "list")
    for shown in (listed.stdout + listed.stderr, table.stdout + table.stderr):
        for hidden in (secret, *ENVIRONMENT_SECRETS.values()):
            assert hidden not in shown

    # The same name in the environment of a server: it does not start.
    both = {
        **environment,
        "SUBLEDGER_API_KEYS": f"{ENVIRONMENT_KEYS},billing:other-secret-0123456:read",
    }
    refused = subledger(both, "serve", "--port", "1")
    assert refused.returncode == 1
    assert "billing" in refused.stderr and "subledger keys revoke" in refused.stderr

    # With only made keys, the server starts and takes them.
    only_made = {**environment, "SUBLEDGER_API_KEYS": ""}
    with serving(tmp_path, only_made) as base:
        answer = httpx.get(f"{base}/v1/events", headers={"Authorization": f"Bearer {secret}"})
        assert answer.status_code == 200
