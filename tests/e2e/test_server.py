"""The real thing: `subledger serve` in its own process, spoken to over real HTTP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest

from tests.builders import customer, invoice, subscription, wire_event

ROOT = Path(__file__).resolve().parents[2]
SUBLEDGER = str(Path(sys.executable).parent / "subledger")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def readme_key_setting() -> str:
    """The `SUBLEDGER_API_KEYS=...` of the README's run command."""
    run_command = (ROOT / "README.md").read_text().split("```sh\n", 1)[1]
    return re.search(r"SUBLEDGER_API_KEYS='([^']+)'", run_command).group(1)  # type: ignore[union-attr]


@contextmanager
def serving(directory: Path, env: dict[str, str]) -> Iterator[str]:
    """`subledger serve` in `directory` on a free port, once `/health` answers: its URL. Its
    output goes to `serve.log` there (a pipe nobody reads would fill up and stop the server
    after a few hundred requests), and is the failure's message if it stops or never answers."""
    port = free_port()
    log = directory / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [SUBLEDGER, "serve", "--port", str(port)],
            cwd=directory,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            process.kill()
            process.wait(timeout=30)
            raise AssertionError(log.read_text(errors="replace"))
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """`subledger serve` on SQLite (in a fresh directory) or PostgreSQL; yields its URL."""
    url = "sqlite:///subledger.db"
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    env = {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": url,
        "SUBLEDGER_API_KEYS": readme_key_setting(),
    }
    with serving(tmp_path, env) as base:
        yield base
    if request.param == "sqlite":
        assert (tmp_path / "subledger.db").exists(), "the embedded default is ./subledger.db"


def test_a_retry_over_http_appends_nothing_twice(server: str) -> None:
    key = readme_key_setting().split(":")[1]
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {key}"}) as client:
        batch = {"events": [wire_event(customer("c1")), wire_event(subscription())]}
        assert client.post("/v1/events", json=batch).status_code == 201
        again = client.post("/v1/events", json=batch)
        assert again.status_code == 200
        assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
        assert len(client.get("/v1/events").json()["events"]) == 2


def test_two_senders_racing_the_same_batch_over_http_append_it_once(server: str) -> None:
    key = readme_key_setting().split(":")[1]
    batch = orjson.dumps(
        {
            "events": [wire_event(customer(f"c{i}")) for i in range(200)]
            + [wire_event(invoice("i1", customer_id="c0"))]
        }
    )
    statuses: list[int] = []

    def send() -> None:
        answer = httpx.post(
            f"{server}/v1/events",
            content=batch,
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        )
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 201]
    logged = httpx.get(
        f"{server}/v1/events?limit=1000", timeout=10, headers={"Authorization": f"Bearer {key}"}
    ).json()["events"]
    assert len(logged) == 201


def test_health_says_whether_the_store_answers(server: str) -> None:
    answer = httpx.get(f"{server}/health", timeout=5)
    assert answer.json()["status"] == "ok"
    assert answer.headers["X-Request-Id"]


def serve_briefly(tmp_path: Path, keys: str | None) -> subprocess.CompletedProcess[str]:
    """`subledger serve` with `SUBLEDGER_API_KEYS` set to `keys` (or unset), expected to stop."""
    env = {k: v for k, v in os.environ.items() if k != "SUBLEDGER_API_KEYS"}
    if keys is not None:
        env["SUBLEDGER_API_KEYS"] = keys
    return subprocess.run(
        [SUBLEDGER, "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_serve_refuses_to_start_without_keys(tmp_path: Path) -> None:
    result = serve_briefly(tmp_path, None)
    assert result.returncode != 0
    assert "SUBLEDGER_API_KEYS" in result.stderr


def test_serve_refuses_a_placeholder_secret(tmp_path: Path) -> None:
    result = serve_briefly(tmp_path, "local:changeme:read")
    assert result.returncode != 0
    assert "at least 16 characters" in result.stderr
    assert "changeme" not in result.stderr


def test_serve_refuses_a_chart_of_accounts_it_cannot_use(tmp_path: Path) -> None:
    (tmp_path / "subledger.toml").write_text('[accounts]\noutput_vat = "5600"\n')
    result = serve_briefly(tmp_path, "local:local-development-key:read")
    assert result.returncode != 0
    assert "subledger.toml: account 5600 serves two roles" in result.stderr


def test_version_prints_the_version() -> None:
    result = subprocess.run([SUBLEDGER, "version"], capture_output=True, text=True, timeout=30)
    assert result.stdout.startswith("subledger 0.1.0")


@pytest.mark.slow
@pytest.mark.timeout(900)  # a fresh venv and the whole demo; the test's own deadline is 600 s
def test_the_readmes_run_command_installs_demos_and_serves_on_a_fresh_copy(tmp_path: Path) -> None:
    """The README's first command, run as written (on a free port) in a fresh copy of the
    project: it makes its own virtualenv, installs, builds the demo business on ./subledger.db
    with its summary, and serves it, dashboard and all."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    copy = tmp_path / "subledger"
    for name in files:
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            (copy / name).write_bytes(source.read_bytes())
    run_command = (ROOT / "README.md").read_text().split("```sh\n", 1)[1].split("\n```", 1)[0]
    port = free_port()
    assert run_command.endswith("subledger serve")
    assert "subledger demo" in run_command
    output = tmp_path / "output.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            ["bash", "-c", f"{run_command} --port {port}"],
            cwd=copy,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = httpx.get(f"{base}/health", timeout=1)
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(1)
        else:
            raise AssertionError(output.read_text()[-3000:])
        assert answer.json()["store"] == "sqlite"
        assert (copy / "subledger.db").exists()
        said = output.read_text()
        assert "The demo business" in said and "MRR now" in said, said[-3000:]
        key = readme_key_setting().split(":")[1]
        mrr = httpx.get(
            f"{base}/v1/metrics/mrr",
            params={"currency": "DKK"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert mrr.status_code == 200 and mrr.json()["months"][-1]["mrr"] > 0, mrr.text
        assert "<title>" in httpx.get(f"{base}/").text, "the dashboard is served"
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")
