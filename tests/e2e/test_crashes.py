"""Crashes under load, with real processes on real PostgreSQL.

`subledger serve` killed with SIGKILL during appends, the projection worker killed mid-page
beside a server that keeps appending, and PostgreSQL itself stopped and started again under
appends and reads: each run ends with every acknowledged event in the log exactly once and
the projections equal to a rebuild from the log.

(Killing `subledger project` mid-page while the ledger appends in the test's own process is
tests/integration/test_projection_crashes.py; a database dropped under a running app is
tests/integration/test_store_failures.py.)
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from bench.harness import free_port
from bench.verify import (
    check_log,
    differences,
    projection_digests,
    rebuild_projections,
    split_store_url,
)
from subledger.api.demo.generator import generate
from tests.builders import customer, wire_event
from tests.conftest import API_KEYS, READ, WRITE, _postgres_required
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow]

SUBLEDGER = str(Path(sys.executable).parent / "subledger")


def environment(url: str, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": url,
        "SUBLEDGER_API_KEYS": API_KEYS,
        "SUBLEDGER_LOG_LEVEL": "warning",
        "SUBLEDGER_READ_WAIT_SECONDS": "30",
        **more,
    }


class Service:
    """`subledger serve` on a port of its own, started again on the same port after a kill;
    its output goes to a file, shown when it fails to start."""

    def __init__(self, directory: Path, env: dict[str, str], *arguments: str) -> None:
        self.directory = directory
        self.env = env
        self.arguments = arguments
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.output = directory / "serve.log"

    def start(self, wait_seconds: float = 60) -> None:
        with self.output.open("ab") as output:
            self.process = subprocess.Popen(
                [SUBLEDGER, "serve", "--port", str(self.port), *self.arguments],
                cwd=self.directory,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"serve did not start:\n{self.output.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no chance to finish a request, a commit or a fold."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
            self.process = None


@dataclass
class Sender:
    """A billing system's sender: its batches in order, each sent until it is answered 200 or
    201. A batch whose answer never came (the server died, the connection broke) or came as a
    5xx is sent again, unchanged: the event ids make that safe."""

    base: str
    batches: list[list[dict[str, Any]]]
    answers: Counter[str] = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    resent_found_appended: int = 0
    """Batches sent again after no answer whose every event the log held already."""
    in_flight: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def sent(self) -> list[str]:
        return [event["id"] for batch in self.batches for event in batch]

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.base, headers=WRITE, timeout=30) as client:
                for batch in self.batches:
                    if not self._send(client, orjson.dumps({"events": batch})):
                        return
        finally:
            self.done.set()

    def _send(self, client: httpx.Client, body: bytes) -> bool:
        unanswered = False
        while not self.stopped.is_set():
            self.in_flight.set()
            try:
                answer = client.post("/v1/events", content=body)
            except httpx.TransportError:
                self.answers["no answer"] += 1
                unanswered = True
                time.sleep(0.05)
                continue
            finally:
                self.in_flight.clear()
            if answer.status_code in (200, 201):
                self.answers[str(answer.status_code)] += 1
                results = answer.json()["results"]
                if unanswered and all(result["status"] == "duplicate" for result in results):
                    self.resent_found_appended += 1
                self.acknowledged += [result["id"] for result in results]
                self.positions += [result["position"] for result in results]
                return True
            code = answer.json().get("error", {}).get("code", "?")
            self.answers[f"{answer.status_code} {code}"] += 1
            if answer.status_code < 500:
                self.refused.append(answer.text[:500])
                return False
            time.sleep(0.1)
        return False


def batches_of(events: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [events[start : start + size] for start in range(0, len(events), size)]


def log_end(url: str) -> int:
    server, schema = split_store_url(url)
    with psycopg.connect(server) as connection:
        found = connection.execute(
            f'SELECT coalesce(max(position), 0) FROM "{schema}".subledger_log'
        ).fetchone()
    return int(found[0]) if found else 0


def folded_to(url: str, name: str = "revenue") -> int:
    server, schema = split_store_url(url)
    with psycopg.connect(server) as connection:
        found = connection.execute(
            f'SELECT position FROM "{schema}".subledger_projections WHERE name = %s', (name,)
        ).fetchone()
    return int(found[0]) if found else 0


def read_caught_up(base: str, url: str, timeout: float = 120) -> None:
    """Wait until every read answers from projections that have folded the whole log."""
    end = log_end(url)
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, headers=READ, timeout=60) as client:
        for path in ("/v1/metrics/mrr", "/v1/revenue/summary", "/v1/ledger/trial-balance"):
            while True:
                answer = client.get(path, params={"currency": "DKK"})
                if answer.status_code != 503 or time.monotonic() > deadline:
                    break
                assert answer.json()["error"]["code"] == "NOT_CAUGHT_UP", answer.text
            assert answer.status_code == 200, answer.text
            assert int(answer.headers["X-Log-Position"]) >= end


def assert_equal_to_a_rebuild(url: str) -> None:
    """The projections' stored rows and positions before and after `subledger projections
    rebuild` (nothing else running)."""
    before = projection_digests(url)
    rebuild_projections(url)
    assert differences(before, projection_digests(url)) == []


def assert_each_event_once(url: str, *senders: Sender, also_sent: Sequence[str] = ()) -> None:
    """Every sender's events were acknowledged, each once, at positions in the order sent, and
    the log holds them and nothing else (but `also_sent`, refused while the store was down)."""
    sent = [event_id for sender in senders for event_id in sender.sent]
    for sender in senders:
        assert sender.refused == []
        assert "500 INTERNAL" not in sender.answers, sender.answers
        assert sender.positions == sorted(sender.positions), "positions follow the order sent"
        assert len(set(sender.positions)) == len(sender.positions)
        assert sorted(sender.acknowledged) == sorted(sender.sent)
    check = check_log(url, sent, [*sent, *also_sent])
    assert check.problems == []
    assert check.events == len(sent)


# 1. The server killed during appends.


@pytest.mark.postgres
def test_a_server_killed_during_appends_again_and_again_ends_with_each_event_once(
    postgres_url: str, tmp_path: Path
) -> None:
    service = Service(tmp_path, environment(postgres_url))
    service.start()
    sender = Sender(service.base, batches_of(generate(400, months=24, seed=21), 15))
    thread = sender.start()
    chance = random.Random(9)
    kills, during_a_request = 0, 0
    try:
        while kills < 5 and not sender.done.is_set():
            time.sleep(chance.uniform(0.2, 0.8))
            during_a_request += sender.in_flight.is_set()
            service.kill()
            kills += 1
            service.start()
        thread.join(120)
        assert not thread.is_alive()
        read_caught_up(service.base, postgres_url)
    finally:
        sender.stopped.set()
        service.stop()
    assert kills == 5, "the sender finished before the fifth kill"
    assert during_a_request >= 3, f"only {during_a_request} of {kills} kills hit a request"
    assert sender.answers["no answer"] >= kills
    assert_each_event_once(postgres_url, sender)
    assert_equal_to_a_rebuild(postgres_url)
    print(
        f"answers: {dict(sender.answers)}; resent, found appended: {sender.resent_found_appended}"
    )


# 2. The projection worker killed mid-page, beside a server that keeps appending.


def projector(directory: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`subledger project`, its output appended to project.log."""
    with (directory / "project.log").open("ab") as output:
        return subprocess.Popen(
            [SUBLEDGER, "project"],
            cwd=directory,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.postgres
def test_a_projector_killed_mid_page_again_and_again_ends_equal_to_a_rebuild(
    postgres_url: str, tmp_path: Path
) -> None:
    env = environment(
        postgres_url, SUBLEDGER_PROJECTION_PAGE_SIZE="3000", SUBLEDGER_READ_WAIT_SECONDS="1"
    )
    service = Service(tmp_path, env, "--no-projections")
    service.start()
    events = generate(1000, months=30, seed=23)
    backlog = Sender(service.base, batches_of(events[:15000], 1000))
    backlog.run()
    sender = Sender(service.base, batches_of(events[15000:], 20))
    thread = sender.start()
    chance = random.Random(3)
    kills: list[tuple[int, int]] = []
    reads: Counter[str] = Counter()
    try:
        while len(kills) < 4:
            worker = projector(tmp_path, env)
            # Once it has written a page, it is folding the next one: kill it in the middle.
            first = folded_to(postgres_url)
            wait_until(lambda: folded_to(postgres_url) > first, 60, "the projector wrote a page")  # noqa: B023
            time.sleep(chance.uniform(0.05, 0.3))
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            kills.append((folded_to(postgres_url), log_end(postgres_url)))
            answer = httpx.get(
                f"{service.base}/v1/metrics/mrr",
                params={"currency": "DKK"},
                headers=READ,
                timeout=60,
            )
            reads[f"{answer.status_code} {answer.json().get('error', {}).get('code', '')}"] += 1
        worker = projector(tmp_path, env)
        thread.join(120)
        assert not thread.is_alive()
        read_caught_up(service.base, postgres_url)
        worker.terminate()
        worker.wait(30)
    finally:
        sender.stopped.set()
        service.stop()
    assert len([1 for folded, end in kills if folded < end]) >= 3, kills
    assert set(reads) <= {"200 ", "503 NOT_CAUGHT_UP"}, reads
    assert_each_event_once(postgres_url, backlog, sender)
    assert_equal_to_a_rebuild(postgres_url)
    print(f"kills (folded, log end): {kills}; reads: {dict(reads)}")


# 2b. The folding process a server starts beside itself: replaced when it dies, and gone with
# the server.


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, by id, with their command lines (from /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if parent == pid:
            found[int(stat.parent.name)] = command
    return found


def folder_of(service: Service) -> int | None:
    assert service.process is not None
    found = [c for c, command in children(service.process.pid).items() if "project" in command]
    return found[0] if len(found) == 1 else None


def alive(pid: int) -> bool:
    """Whether the process runs (not gone, nor a zombie awaiting its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # gone, and reaped
        return False


def appended_and_read(base: str, url: str, customers: Sequence[str]) -> None:
    """Append the customers and wait until the reads answer from projections folded that far."""
    events = [wire_event(customer(customer_id)) for customer_id in customers]
    answer = httpx.post(f"{base}/v1/events", json={"events": events}, headers=WRITE, timeout=30)
    assert answer.status_code == 201, answer.text
    read_caught_up(base, url, timeout=60)


@pytest.mark.postgres
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_a_servers_folding_process_is_replaced_when_killed_and_ends_with_the_server(
    postgres_url: str, tmp_path: Path
) -> None:
    service = Service(tmp_path, environment(postgres_url))
    service.start()
    try:
        wait_until(lambda: folder_of(service) is not None, 30, "a folding process beside it")
        first = folder_of(service)
        assert first is not None
        appended_and_read(service.base, postgres_url, ["c_before"])

        os.kill(first, signal.SIGKILL)
        wait_until(lambda: folder_of(service) not in (None, first), 30, "another folding process")
        second = folder_of(service)
        assert second is not None
        appended_and_read(service.base, postgres_url, ["c_after_1", "c_after_2"])

        service.kill()
        wait_until(lambda: not alive(second), 10, "the folding process ending with the server")
    finally:
        service.stop()
    assert_equal_to_a_rebuild(postgres_url)


# 3. PostgreSQL stopped (as by a crash) and started again under appends and reads.


def postgres_binaries() -> Path | None:
    """Where `initdb` and `pg_ctl` are: `pg_config --bindir`, else the newest
    /usr/lib/postgresql/*/bin."""
    found = shutil.which("pg_config")
    if found:
        done = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(done.stdout.strip())
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, in a temporary directory on a free port, that
    the test may stop and start (never the machine's shared server). As root, it runs as the
    `postgres` user: initdb refuses root."""

    binaries: Path
    directory: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str, check: bool = True) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*as_user, *command], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0 or not check, done.stdout + done.stderr

    def init(self) -> None:
        self._run(
            str(self.binaries / "initdb"),
            "-D",
            str(self.directory / "data"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._run(
            str(self.binaries / "pg_ctl"),
            "-D",
            str(self.directory / "data"),
            "-o",
            options,
            "-l",
            str(self.directory / "postgres.log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast", check: bool = True) -> None:
        data = str(self.directory / "data")
        self._run(str(self.binaries / "pg_ctl"), "-D", data, "-m", mode, "stop", check=check)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    binaries = postgres_binaries()
    missing = None
    if binaries is None:
        missing = "no initdb and pg_ctl (pg_config --bindir, /usr/lib/postgresql/*/bin)"
    elif os.geteuid() == 0 and shutil.which("runuser") is None:
        missing = "running as root without runuser to start PostgreSQL as its own user"
    if missing or binaries is None:
        reason = f"a private PostgreSQL cluster is needed to restart it: {missing}"
        if _postgres_required():
            pytest.fail(f"{reason} (SUBLEDGER_REQUIRE_POSTGRES is set)")
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="subledger-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    cluster = PrivatePostgres(binaries, directory)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop("immediate", check=False)
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Analyst:
    """Reads MRR and health over and over, counting each answer's status and code."""

    base: str
    answers: Counter[str] = field(default_factory=Counter)
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.base, headers=READ, timeout=10) as client:
            while not self.stopped.is_set():
                for path in ("/v1/metrics/mrr", "/health"):
                    try:
                        answer = client.get(path, params={"currency": "DKK"})
                    except httpx.TransportError:
                        self.answers[f"{path} no answer"] += 1
                        continue
                    code = (
                        answer.json().get("error", {}).get("code", "")
                        if answer.status_code >= 400
                        else ""
                    )
                    self.answers[f"{path} {answer.status_code} {code}".rstrip()] += 1
                time.sleep(0.05)


@pytest.mark.postgres
def test_postgresql_restarted_under_load_is_reported_recovered_from_and_loses_nothing(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    url = f"{private_postgres.url}?schema=crash"
    service = Service(tmp_path, environment(url, SUBLEDGER_CONNECT_TIMEOUT_SECONDS="2"))
    service.start()
    sender = Sender(service.base, batches_of(generate(400, months=24, seed=25), 25))
    analyst = Analyst(service.base)
    threads = [sender.start(), threading.Thread(target=analyst.run, daemon=True)]
    threads[1].start()
    probes: list[str] = []
    recoveries: list[float] = []
    try:
        for outage in (2.0, 15.0):
            acknowledged = len(sender.acknowledged)
            wait_until(lambda: len(sender.acknowledged) > acknowledged + 500, 60, "appends")  # noqa: B023
            private_postgres.stop("immediate")
            health = httpx.get(f"{service.base}/health", timeout=30)
            assert health.status_code == 503
            assert health.json()["status"] == "unavailable"
            probe = wire_event(customer(f"c_probe_{len(probes)}"))
            probes.append(probe["id"])
            answer = httpx.post(f"{service.base}/v1/events", json=probe, headers=WRITE, timeout=30)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "STORE_UNAVAILABLE"
            assert "Retry-After" in answer.headers
            time.sleep(outage)
            private_postgres.start()
            back = time.monotonic()
            wait_until(
                lambda: httpx.get(f"{service.base}/health", timeout=30).status_code == 200,
                30,
                "health after PostgreSQL came back",
            )
            recoveries.append(time.monotonic() - back)
        threads[0].join(120)
        assert not threads[0].is_alive()
        read_caught_up(service.base, url)
    finally:
        sender.stopped.set()
        analyst.stopped.set()
        threads[1].join(60)
        service.stop()
    assert max(recoveries) < 10, recoveries
    failures = [answer for answer in (*sender.answers, *analyst.answers) if " 500" in answer]
    assert failures == []
    assert sender.answers["503 STORE_UNAVAILABLE"] >= 1, sender.answers
    assert analyst.answers["/health 503"] >= 1, analyst.answers
    assert_each_event_once(url, sender, also_sent=probes)
    assert_equal_to_a_rebuild(url)
    print(
        f"recovered in {recoveries} s; sender {dict(sender.answers)}; analyst {dict(analyst.answers)}"
    )
