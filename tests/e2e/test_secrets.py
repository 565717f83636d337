"""Billy's and Dinero's credentials never leave the process that uses them: after deliveries
that succeed, time out, are refused, and are refused for a wrong token or client secret, a
`sync check` with a wrong API key, and targets that quote the credential they refuse, no
credential is in the output of `serve`, `sync run`, `sync check` or `sync status` (at log level
debug), in any answer of the API, in any row of any table of the database, or in a notification
(webhook or e-mail). On PostgreSQL, over real HTTP, each program in a process of its own."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import psycopg
import pytest

from bench.harness import free_port
from bench.sandboxes import ROOT, Sandbox, append
from subledger.api.demo.generator import Business
from subledger.api.demo.run import billy_products, products_of
from tests.e2e.test_sync_targets import Mailbox, Webhook, delivery_messages, wait_until_held

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]

BILLY_TOKEN = "billy-access-token-Q7xv3Lk9"
DINERO_API_KEY = "dinero-api-key-M4ns8Tq2"
DINERO_CLIENT_SECRET = "dinero-client-secret-R5wz1Hc6"
WRONG_BILLY_TOKEN = "wrong-billy-token-J2pd7Ye4"
WRONG_DINERO_CLIENT_SECRET = "wrong-dinero-client-secret-V9kc3Nb8"
WRONG_DINERO_API_KEY = "wrong-dinero-api-key-G6ht2Wm5"
#: The credentials of two targets that quote, in their refusals, what they were sent.
ECHO_TOKEN = "echo-billy-token-P8dk2Rf7"
ECHO_CLIENT_SECRET = "echo-dinero-client-secret-T3mq6Xs1"
ECHO_API_KEY = "echo-dinero-api-key-W1bn5Zc4"
API_SECRET = "api-operator-secret-X3fr8Dq1"
SECRETS = (
    BILLY_TOKEN,
    DINERO_API_KEY,
    DINERO_CLIENT_SECRET,
    WRONG_BILLY_TOKEN,
    WRONG_DINERO_CLIENT_SECRET,
    WRONG_DINERO_API_KEY,
    ECHO_TOKEN,
    ECHO_CLIENT_SECRET,
    ECHO_API_KEY,
    API_SECRET,
)
ORGANIZATION = "123456"
DINERO_CLIENT = "sandbox-client"
TARGETS = ("billy", "dinero", "echo_billy", "echo_dinero")
#: Every third request or so faulted: 500s, 429s, answers slower than the 1 s timeout, and
#: connections broken after the work was done.
FAULTS = {
    "fail_rate": 0.1,
    "throttle_rate": 0.05,
    "slow_rate": 0.1,
    "slow_ms": 1500,
    "drop_rate": 0.05,
}
NO_FAULTS = dict.fromkeys(("fail_rate", "throttle_rate", "slow_rate", "drop_rate"), 0)


@contextmanager
def sandbox(kind: str) -> Iterator[Sandbox]:
    """`subledger sandbox <kind>` with this test's credentials, its rate limit off."""
    port = free_port()
    command = [sys.executable, "-m", "subledger", "sandbox", kind, "--port", str(port)]
    if kind == "billy":
        command += ["--token", BILLY_TOKEN]
    else:
        command += ["--api-key", DINERO_API_KEY, "--client-id", DINERO_CLIENT]
        command += ["--client-secret", DINERO_CLIENT_SECRET, "--organization-id", ORGANIZATION]
    process = subprocess.Popen(
        [*command, "--rate-limit", "0", "--seed", "3"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/_sandbox/summary", process)
        yield Sandbox(kind, url, process)
    finally:
        process.terminate()
        process.wait(10)


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, f"{url} never answered"
        time.sleep(0.1)


class Echo(ThreadingHTTPServer):
    """A target that refuses every request and quotes the credentials it was sent: Billy's
    `X-Access-Token` in a 401, and at Dinero's token endpoint the client's secret and the API
    key in a 400."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _refuse(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if self.path.endswith("/oauth/token"):
                    scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
                    client = base64.b64decode(encoded).decode() if scheme == "Basic" else ""
                    key = form.get("username", [""])[0]
                    status, body = (
                        400,
                        {
                            "error": "invalid_grant",
                            "error_description": f"no client {client} with the API key {key}",
                        },
                    )
                else:
                    token = self.headers.get("X-Access-Token") or self.headers.get("Authorization")
                    status, body = (
                        401,
                        {
                            "errorCode": "OAUTH_INVALID_ACCESS_TOKEN",
                            "errorMessage": f"The access token {token} is not valid.",
                        },
                    )
                answer = orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = _refuse  # noqa: N815

            def log_message(self, *_: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def configuration(
    path: Path, billy: Sandbox, dinero: Sandbox, echo: Echo, webhook: Webhook, mailbox: Mailbox
) -> Path:
    """Four targets (the sandboxes, and the echo as a Billy and as a Dinero) that pay MobilePay
    into the receivables account, which takes no payments: those are refused. Billy's token and
    the echo's credentials are in the file; Dinero's are in the environment."""
    refusing = 'accounts = { "5820" = "5600" }\nrequests_per_minute = 100000\ntimeout_seconds = 1\n'
    path.write_text(
        f'[targets.billy]\nurl = "{billy.url}/v2"\ntoken = "{BILLY_TOKEN}"\n{refusing}\n'
        f'[targets.dinero]\nurl = "{dinero.url}"\norganization_id = "{ORGANIZATION}"\n'
        f'client_id = "{DINERO_CLIENT}"\n{refusing}\n'
        f'[targets.echo_billy]\nkind = "billy"\nurl = "{echo.url}/v2"\ntoken = "{ECHO_TOKEN}"\n'
        f"{refusing}\n"
        f'[targets.echo_dinero]\nkind = "dinero"\nurl = "{echo.url}"\norganization_id = "654321"\n'
        f'client_id = "echo-client"\nclient_secret = "{ECHO_CLIENT_SECRET}"\n'
        f'token = "{ECHO_API_KEY}"\n{refusing}\n'
        f'[notifications]\nwebhook_url = "{webhook.url}"\nsmtp_host = "127.0.0.1"\n'
        f'smtp_port = {mailbox.port}\nsmtp_to = ["finance@example.com"]\n'
    )
    return path


class Programs:
    """`subledger` commands in processes of their own, each one's output kept in a file."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory, self.env, self.outputs = directory, env, list[Path]()

    def _output(self, name: str) -> Path:
        path = self.directory / f"{len(self.outputs):02d}-{name}.log"
        self.outputs.append(path)
        return path

    def run(self, *arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "subledger", *arguments],
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self._output("-".join(arguments)).write_text(done.stdout + done.stderr)
        return done

    @contextmanager
    def running(self, *arguments: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
        with self._output("-".join(arguments)).open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "subledger", *arguments],
                cwd=ROOT,
                env={**self.env, **env},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            try:
                yield process
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(60)

    @contextmanager
    def serving(self, **env: str) -> Iterator[httpx.Client]:
        """`subledger serve` (which delivers too), and a client of it with the operator's key."""
        port = free_port()
        with self.running("serve", "--port", str(port), **env) as process:
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/health", process)
            headers = {"Authorization": f"Bearer {API_SECRET}"}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                yield client

    def said(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.outputs)


def database_rows(database_url: str) -> Iterator[tuple[str, Any]]:
    """Every value of every row of every table in the store's schema."""
    url, _, schema = database_url.partition("?schema=")
    with psycopg.connect(url) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            for row in connection.execute(f'SELECT * FROM "{schema}"."{table}"'):
                for value in row:
                    yield table, value


def leaks(text: Any) -> list[str]:
    data = text if isinstance(text, bytes) else str(text).encode()
    return [secret for secret in SECRETS if secret.encode() in data]


def failed_lanes(database_url: str, target: str) -> set[str]:
    return {message.lane for message in delivery_messages(database_url, target, "failed")}


def test_no_credential_reaches_a_log_an_answer_the_database_or_a_notification(
    postgres_url: str, tmp_path: Path, webhook: Webhook, mailbox: Mailbox
) -> None:
    events = list(Business(customers=10, months=4, seed=5).events())
    answers: list[httpx.Response] = []
    echo = Echo()
    with sandbox("billy") as billy, sandbox("dinero") as dinero:
        append(postgres_url, events)
        billy_products(f"{billy.url}/v2", BILLY_TOKEN, products_of(events))
        config = configuration(tmp_path / "subledger.toml", billy, dinero, echo, webhook, mailbox)
        programs = Programs(
            tmp_path,
            {
                **os.environ,
                "SUBLEDGER_DATABASE_URL": postgres_url,
                "SUBLEDGER_CONFIG": str(config),
                "SUBLEDGER_API_KEYS": f"operator:{API_SECRET}:read+admin",
                "SUBLEDGER_TARGET_DINERO_TOKEN": DINERO_API_KEY,
                "SUBLEDGER_TARGET_DINERO_CLIENT_SECRET": DINERO_CLIENT_SECRET,
                "SUBLEDGER_SYNC_BACKOFF_SECONDS": "0.05",
                "SUBLEDGER_SYNC_BACKOFF_CAP_SECONDS": "0.5",
                "SUBLEDGER_SYNC_LEASE_SECONDS": "3",
                "SUBLEDGER_LOG_LEVEL": "debug",
            },
        )

        # Deliveries through faults, with refusals, by `sync run` and by `serve` at once.
        billy.faults(**FAULTS)
        dinero.faults(**FAULTS)
        with programs.running("sync", "run", "--workers", "2"), programs.serving() as api:
            for target in TARGETS:
                wait_until_held(postgres_url, target, timeout=240)
            billy.faults(**NO_FAULTS)
            dinero.faults(**NO_FAULTS)
            failed = api.get("/v1/sync/messages", params={"status": "failed", "limit": 1000})
            answers.append(failed)
            for message in failed.json()["messages"]:
                answers.append(api.get(f"/v1/sync/messages/{message['id']}"))
            answers.append(api.get("/v1/sync/messages", params={"status": "sent", "limit": 1000}))
            for target in TARGETS:
                answers.append(api.get("/v1/sync/reconciliation", params={"target": target}))
            answers.append(api.get("/v1/events", headers={"Authorization": "Bearer wrong-key"}))
        refused = {t: failed_lanes(postgres_url, t) for t in TARGETS}
        assert all(refused.values()), "MobilePay payments were refused, and all of the echo's"
        assert [a.status_code for a in answers[-5:]] == [200, 200, 502, 502, 401]

        # A new customer, delivered with a wrong Billy token and a wrong Dinero client secret;
        # the reconciliation fails the same way; `sync check` with a wrong Dinero API key.
        append(
            postgres_url,
            [
                {
                    "id": "evt_secrets_customer",
                    "type": "customer.created",
                    "data": {
                        "customer_id": "cus_secrets",
                        "name": "Hemmelig ApS",
                        "country": "DK",
                        "kind": "company",
                        "email": "billing@hemmelig.dk",
                    },
                }
            ],
        )
        wrong = {
            "SUBLEDGER_TARGET_BILLY_TOKEN": WRONG_BILLY_TOKEN,
            "SUBLEDGER_TARGET_DINERO_CLIENT_SECRET": WRONG_DINERO_CLIENT_SECRET,
        }
        with programs.serving(**wrong) as api:
            deadline = time.monotonic() + 120
            while not all("cus_secrets" in failed_lanes(postgres_url, t) for t in TARGETS):
                assert time.monotonic() < deadline, "the new customer was never refused"
                time.sleep(0.5)
            for target in ("billy", "dinero"):
                refused = api.get("/v1/sync/reconciliation", params={"target": target})
                assert refused.status_code == 502, refused.text
                answers.append(refused)
            answers.append(api.get("/v1/sync/messages", params={"status": "failed"}))
        checked = programs.run("sync", "check", SUBLEDGER_TARGET_DINERO_TOKEN=WRONG_DINERO_API_KEY)
        assert checked.returncode == 1
        assert "Dinero refused the token request (400" in checked.stdout, checked.stdout
        status = programs.run("sync", "status")
        assert "failed" in status.stdout

    echo.shutdown()
    attempts = attempts_of(postgres_url)
    errors = {t: " | ".join(str(a[3]) for a in attempts if a[0] == t) for t in TARGETS}
    assert ": 401 The access token is not valid" in errors["billy"], "the wrong Billy token"
    assert "Dinero refused the token request (401" in errors["dinero"], "the wrong secret"
    assert "The access token *** is not valid" in errors["echo_billy"], "quoted, masked"
    assert "no client echo-client:*** with the API key ***" in errors["echo_dinero"]
    assert any("→ timeout" in a[2] for a in attempts), "some requests timed out"
    assert any(a[1] in (500, 429) for a in attempts), "some requests were faulted"
    assert any(a[1] == 200 for a in attempts) and webhook.documents and mailbox.mails

    found = {
        "logs": leaks(programs.said()),
        "answers": sorted({s for a in answers for s in leaks(a.content)}),
        "database": sorted(
            {f"{table}: {s}" for table, value in database_rows(postgres_url) for s in leaks(value)}
        ),
        "webhook": leaks(orjson.dumps(webhook.documents)),
        "e-mail": sorted({s for mail in mailbox.mails for s in leaks(mail.as_string())}),
    }
    assert found == {"logs": [], "answers": [], "database": [], "webhook": [], "e-mail": []}


def attempts_of(database_url: str) -> list[tuple[str, int | None, str, str | None]]:
    """Every attempt: its target, its last HTTP status, its requests and its error."""
    url, _, schema = database_url.partition("?schema=")
    with psycopg.connect(url) as connection:
        return connection.execute(
            f'SELECT m.target, a.http_status, a.requests, a.error FROM "{schema}".sync_attempts a'
            f' JOIN "{schema}".sync_messages m ON m.id = a.message_id'
        ).fetchall()
