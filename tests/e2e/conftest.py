"""Collection fixes and shared fixtures for the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.sandboxes import KINDS, Sandbox, sandbox
from tests.e2e.test_sync_targets import Mailbox, Webhook


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each operation Schemathesis collects a node id of its own.

    Schemathesis names each operation's test `test_x[GET /v1/events]`, but pytest 9.2 builds a
    node id from the test's original name alone, so every operation had the same id: pytest-xdist
    then ran one of them and dropped the rest without a word. The operation goes back into
    the id, as the parameters of a parametrized test do.
    """
    for item in items:
        label = getattr(item, "operation_label", None)
        node_id = getattr(item, "_id", None)
        if label and node_id is not None and node_id.params is None:
            item._id = node_id.with_params(label)  # type: ignore[attr-defined]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.shutdown()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()


@pytest.fixture(params=KINDS)
def target(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """Each target's sandbox in turn, in a process of its own, its rate limit off (the
    dispatcher's budget is set far above what it can reach, so the sync runs as fast as it
    can)."""
    with sandbox(request.param) as box:
        yield box
