"""What a load or crash run is checked against afterwards, on PostgreSQL: the log holds each
event that was sent exactly once, and the projections equal a rebuild from the log.

Shared by `bench/load.py` and the crash tests (`tests/e2e/test_crashes.py`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

import orjson
import psycopg
from psycopg.sql import SQL, Composed, Identifier

from bench.harness import subledger
from subledger.adapters.rows.codec import TRACKING, decode, table_name
from subledger.api.composition import build_projections
from subledger.api.settings import Settings


def split_store_url(url: str) -> tuple[str, str]:
    """A store URL `postgresql://.../db?schema=s` as the server's URL and the schema."""
    parts = urlsplit(url)
    schema = parse_qs(parts.query).get("schema", ["public"])[0]
    return urlunsplit(parts._replace(query="")), schema


@dataclass(frozen=True)
class LogCheck:
    """What the log holds against what was sent."""

    events: int
    """Rows in the log."""
    missing: list[str]
    """Acknowledged ids the log does not hold."""
    unexpected: list[str]
    """Ids in the log that nobody sent."""
    doubled: int
    """Log rows beyond one per id, or stored events beyond one per log row (must be 0)."""
    skipped: int
    """Positions up to the last that hold no event: appends rolled back (a write that lost a
    race, a server killed mid-commit, a database that restarted); docs/specification.md §5 allows
    them."""

    @property
    def problems(self) -> list[str]:
        found = []
        if self.missing:
            found.append(f"{len(self.missing)} acknowledged events missing: {self.missing[:5]}")
        if self.unexpected:
            found.append(f"{len(self.unexpected)} events nobody sent: {self.unexpected[:5]}")
        if self.doubled:
            found.append(f"{self.doubled} events held more than once")
        return found


def check_log(url: str, acknowledged: Collection[str], sent: Collection[str]) -> LogCheck:
    """The log at store `url` against the ids whose append was answered 200 or 201
    (`acknowledged`: each must be there once) and every id sent at all (`sent`: the log may
    hold those whose answer never came, once, and nothing else)."""
    server, schema = split_store_url(url)
    with psycopg.connect(server) as connection:
        rows = connection.execute(
            SQL("SELECT event_id, position FROM {0} ORDER BY position").format(
                _name(schema, "subledger_log")
            )
        ).fetchall()
        found = connection.execute(
            SQL("SELECT count(*), coalesce(max(notification_id), 0) FROM {0}").format(
                _name(schema, "subledger_events")
            )
        ).fetchone()
    stored, last = found if found else (0, 0)
    ids = [event_id for event_id, _ in rows]
    held = set(ids)
    return LogCheck(
        events=len(rows),
        missing=sorted(set(acknowledged) - held),
        unexpected=sorted(held - set(sent)),
        doubled=(len(ids) - len(held)) + abs(stored - len(rows)),
        skipped=last - len(rows),
    )


def projection_digests(url: str) -> dict[str, str]:
    """A digest of every projection table's rows (JSON values compared as values, not bytes)
    and of each projection's position, read straight from the tables at store `url`."""
    server, schema = split_store_url(url)
    digests: dict[str, str] = {}
    with psycopg.connect(server) as connection, connection.transaction():
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for projection in build_projections(Settings(database_url=url)):
            for table in projection.tables:
                order = SQL(", ").join(Identifier(column.name) for column in table.key)
                cursor = connection.cursor(binary=True)
                cursor.execute(
                    SQL("SELECT * FROM {0} ORDER BY {1}").format(
                        _name(schema, table_name(table)), order
                    )
                )
                digests[table.name] = _digest(decode(table, row) for row in cursor)
        positions = connection.execute(
            SQL("SELECT name, position FROM {0} ORDER BY name").format(_name(schema, TRACKING))
        ).fetchall()
        digests["positions"] = ", ".join(f"{name} {position}" for name, position in positions)
    return digests


def _digest(rows: Iterable[object]) -> str:
    digest, count = hashlib.sha256(), 0
    for row in rows:
        digest.update(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
        count += 1
    return f"{count} rows {digest.hexdigest()[:16]}"


def rebuild_projections(url: str) -> None:
    """`subledger projections rebuild` of every projection at store `url` (nothing else may be
    folding them meanwhile)."""
    done = subledger(url, "projections", "rebuild")
    if done.returncode != 0:
        raise RuntimeError(f"the rebuild failed: {done.stderr[-2000:]}")


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The tables whose digests differ, with both digests."""
    return [
        f"{name}: {before.get(name)} against {after.get(name)}"
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]


def _name(schema: str, table: str) -> Composed:
    return Composed([Identifier(schema), SQL("."), Identifier(table)])
