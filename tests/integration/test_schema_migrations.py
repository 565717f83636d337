"""Schema migrations (adapters/migrations): a database gets each migration once, processes
starting together do not race for them, and a projection whose table layout changes in a
release is made anew and folded again from the log (docs/operating.md, "Upgrading")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from subledger.adapters.backends import backend_for
from subledger.api.composition import build_ledger
from subledger.api.settings import Settings
from subledger.domain.customer import Customer
from subledger.domain.ledger import Entry
from subledger.projections.engine import Column, Projection, Rows, Table
from subledger.projections.runner import ProjectionRunner
from tests.builders import append, customer

VERSIONS = Path(__file__).parents[2] / "adapters" / "migrations" / "versions"


class Countries(Projection):
    """Release one: customers counted by country."""

    name: ClassVar[str] = "layout_test"
    version: ClassVar[int] = 1
    TABLE = Table("layout_test", (Column("country", "text"),), (Column("customers", "int"),))
    tables: ClassVar[tuple[Table, ...]] = (TABLE,)
    event_types: ClassVar[tuple[type, ...]] = (Customer.Created,)

    def fold(self, rows: Rows, entry: Entry) -> None:
        event: Any = entry.event
        rows.add(self.TABLE, (event.country,), "customers", 1)


class CountriesAndKinds(Projection):
    """Release two: the same table with a column more (the last customer's kind)."""

    name: ClassVar[str] = "layout_test"
    version: ClassVar[int] = 2
    TABLE = Table(
        "layout_test",
        (Column("country", "text"),),
        (Column("customers", "int"), Column("last_kind", "text")),
    )
    tables: ClassVar[tuple[Table, ...]] = (TABLE,)
    event_types: ClassVar[tuple[type, ...]] = (Customer.Created,)

    def fold(self, rows: Rows, entry: Entry) -> None:
        event: Any = entry.event
        found = rows.get(self.TABLE, (event.country,)) or {"customers": 0}
        row = {"customers": found["customers"] + 1, "last_kind": event.kind}
        rows.put(self.TABLE, (event.country,), row)


def folded(database_url: str, projection: Projection) -> list[tuple[Any, ...]]:
    ledger = build_ledger(Settings(database_url=database_url))
    try:
        runner = ProjectionRunner(ledger, backend_for(database_url).row_store(ledger), [projection])
        runner.prepare()
        runner.catch_up()
        with runner.store.snapshot(projection.name) as (_, rows):
            return [(*key, *row.values()) for key, row in rows.scan(projection.tables[0])]
    finally:
        ledger.close()


def test_a_projection_whose_columns_change_is_made_anew_and_folded_again(
    database_url: str,
) -> None:
    ledger = build_ledger(Settings(database_url=database_url))
    try:
        append(
            ledger,
            customer("c1", country="DK", kind="company"),
            customer("c2", country="SE", kind="company"),
            customer("c3", country="DK", kind="person"),
        )
    finally:
        ledger.close()
    assert folded(database_url, Countries()) == [("DK", 2), ("SE", 1)]
    # The next release's definition adds a column: the old table cannot hold its rows.
    assert folded(database_url, CountriesAndKinds()) == [("DK", 2, "person"), ("SE", 1, "company")]


def test_a_database_gets_each_migration_once_when_processes_start_together(
    database_url: str,
) -> None:
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "subledger", "migrate"],
            env={**os.environ, "SUBLEDGER_DATABASE_URL": database_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120) for process in started]
    assert [process.returncode for process in started] == [0, 0, 0], outputs
    applied = [
        line for out, _ in outputs for line in out.splitlines() if line.startswith("applied")
    ]
    wanted = sorted(f"applied {path.stem}" for path in VERSIONS.glob("*.py"))
    assert sorted(applied) == wanted, outputs
    listed = subprocess.run(
        [sys.executable, "-m", "subledger", "migrate", "--list"],
        env={**os.environ, "SUBLEDGER_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for path in VERSIONS.glob("*.py"):
        assert path.stem in listed and "not yet" not in listed, listed
