"""`subledger migrate`: apply the schema migrations the database lacks, or list them.

Every command applies them when it opens the database; this one says which it applied, so
that an upgrade can be done, and seen, before the new release's processes start
(docs/operating.md, "Upgrading").
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from subledger.api.cli.common import database_settings
from subledger.api.composition import Composition, build_ledger


@click.command()
@click.option("--list", "listing", is_flag=True, help="List every migration and when it ran.")
def migrate(listing: bool) -> None:
    """Apply the schema migrations the database lacks (every command also does, on start)."""
    composition = Composition(database_settings())
    ledger = build_ledger(composition.settings, migrate=False)
    try:
        if listing:
            table = Table("migration", "applied", box=None)
            for migration in composition.backend.migrations(ledger):
                table.add_row(migration.id, migration.applied_at or "not yet")
            Console(width=100).print(table)
            return
        applied = composition.backend.migrate(ledger)
        for name in applied:
            click.echo(f"applied {name}")
        known = len(composition.backend.migrations(ledger))
        click.echo(f"the database has every migration ({known})")
    finally:
        ledger.close()
