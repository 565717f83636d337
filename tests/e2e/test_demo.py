"""`subledger demo` as a newcomer runs it: a business appended, built and synced to both
sandboxes on ./subledger.db, a summary whose numbers the API then gives, the same for the same
seed, and a second run refused rather than mixed into the first."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_server import serving

SUBLEDGER = str(Path(sys.executable).parent / "subledger")
KEY = "demo-tests-key-0123456789"
UNTIL = "2026-06"
SMALL = ["--customers", "40", "--years", "1", "--seed", "3", "--until", UNTIL]

pytestmark = pytest.mark.timeout(600)


def demo(directory: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("SUBLEDGER_DATABASE_URL", None)
    return subprocess.run(
        [SUBLEDGER, "demo", *arguments],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def without_timing(summary: str) -> str:
    return re.sub(r"built in \d+ s", "built in N s", summary)


@pytest.fixture(scope="module")
def demoed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    directory = tmp_path_factory.mktemp("demo")
    done = demo(directory, *SMALL)
    assert done.returncode == 0, done.stderr[-3000:]
    return directory, done.stdout


@pytest.fixture
def served(demoed: tuple[Path, str]) -> Iterator[str]:
    directory, _ = demoed
    env = {**os.environ, "SUBLEDGER_API_KEYS": f"local:{KEY}:read"}
    env.pop("SUBLEDGER_DATABASE_URL", None)
    with serving(directory, env) as base:
        yield base


def test_the_demo_builds_syncs_and_summarizes_a_business(demoed: tuple[Path, str]) -> None:
    directory, summary = demoed
    assert (directory / "subledger.db").exists(), "on the embedded default"
    assert "MRR now" in summary and "deferred revenue" in summary
    assert "The last 12 months, DKK" in summary
    synced = {
        line.split()[0]: [int(n.replace(",", "")) for n in line.split()[1:]]
        for line in summary.splitlines()
        if line.split()[:1] in (["billy"], ["dinero"])
    }
    assert set(synced) == {"billy", "dinero"}
    for target, (pending, sending, sent, failed) in synced.items():
        assert pending == sending == failed == 0, target
        assert sent > 40, "every customer's contact at least"
    assert synced["billy"][2] == synced["dinero"][2], "the same messages to both"


def test_the_served_demo_gives_the_summarys_numbers(demoed: tuple[Path, str], served: str) -> None:
    _, summary = demoed
    row = next(line for line in summary.splitlines() if line.split()[:1] == ["DKK"])
    mrr_now = int(Decimal(row.split()[1].replace(",", "")) * 100)
    answer = httpx.get(
        f"{served}/v1/metrics/mrr",
        params={"currency": "DKK", "from": UNTIL, "to": UNTIL},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["months"][0]["mrr"] == mrr_now


def test_the_same_seed_gives_the_same_business_and_a_second_run_is_refused(
    demoed: tuple[Path, str], tmp_path: Path
) -> None:
    directory, summary = demoed
    again = demo(directory, *SMALL)
    assert again.returncode == 1
    assert "already holds" in again.stderr and "--fresh" in again.stderr

    elsewhere = demo(tmp_path, *SMALL, "--no-sync")
    assert elsewhere.returncode == 0, elsewhere.stderr[-3000:]
    synced_part = summary.split("Synced", 1)[0]
    assert without_timing(elsewhere.stdout).split("Explore")[0].strip() == (
        without_timing(synced_part).strip()
    )

    fresh = demo(tmp_path, *SMALL, "--no-sync", "--fresh")
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert without_timing(fresh.stdout) == without_timing(elsewhere.stdout)
