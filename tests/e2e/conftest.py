"""Collection fixes for the end-to-end tests."""

from __future__ import annotations

import pytest


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
