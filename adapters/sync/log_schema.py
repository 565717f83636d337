"""What the delivery log's statements run in (`adapters.sync.log`, `log_waiting`).

Its tables, the same on PostgreSQL and SQLite but for how an instant is stored (`timestamptz`
on PostgreSQL, fixed-width UTC text on SQLite), are laid out by the numbered schema
migrations of `adapters.migrations` (`0001_release_0_1`, `0002_delivery_waits`, ...):
`sync_messages` (a message for a target: its lane, its `document`, its status, what it waits
for), `sync_attempts`, `sync_cursors` and `sync_budgets`.
"""

from __future__ import annotations

from typing import Any, Protocol


class Statements(Protocol):
    """A transaction's statements (`adapters.sync.log_database`'s `_Statements`)."""

    def run(self, sql: str, **parameters: Any) -> list[dict[str, Any]]: ...
