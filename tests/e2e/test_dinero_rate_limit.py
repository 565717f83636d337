"""Dinero's limit of 100 requests a minute per organization, kept by two dispatcher workers
together (their budget is one row of the database) against the sandbox enforcing it.

Eleven customers make some 180 requests: well over a minute's worth, so that the limit binds
(a dispatcher ignoring it would send them within seconds and be refused) for nearly two
minutes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bench.sandboxes import Dispatcher, expected_books, sandbox, wait_until_settled
from subledger.api.demo.generator import Business
from tests.e2e.test_sync_targets import assert_holds_exactly, set_up

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def eleven_customers() -> list[dict[str, Any]]:
    return list(Business(customers=11, months=1, seed=13).events())


def test_two_workers_keep_to_dineros_hundred_requests_a_minute_and_finish(
    eleven_customers: list[dict[str, Any]], postgres_url: str, tmp_path: Path
) -> None:
    with sandbox("dinero", rate_limit=100) as dinero:
        # The target's default budget: Dinero's 100 requests a minute per organization.
        env = set_up(eleven_customers, postgres_url, dinero, tmp_path, requests_per_minute=None)
        started = time.monotonic()
        with Dispatcher(env, workers=2):
            assert wait_until_settled(postgres_url, "dinero", timeout=900)["failed"] == 0
        minutes = (time.monotonic() - started) / 60
        stats = dinero.stats()
        assert stats["requests_served"] > 120, "over a minute's budget: the limit binds"
        assert stats["faults_injected"]["rate_limit"] == 0
        assert "429" not in stats["by_status"], "the sandbox never had to refuse a request"
        assert stats["peak_requests_in_60s"] <= 100
        assert stats["requests_served"] / minutes > 70, "the budget was used, not left idle"
        dinero.faults(rate_limit=0)  # reading the books back is not the dispatcher's traffic
        assert_holds_exactly(dinero, expected_books(eleven_customers, postgres_url))
