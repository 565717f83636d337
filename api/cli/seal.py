"""`subledger seal`: seal the personal data of a database written before it was sealed."""

from __future__ import annotations

import click

from subledger.adapters.store.resealing import seal_old_events
from subledger.api.cli.common import database_settings
from subledger.api.composition import build_ledger, build_runner, catch_up
from subledger.api.sync import delivery_log_for
from subledger.domain.personal import PERSONAL_FIELDS


@click.command()
def seal() -> None:
    """Seal the personal data of events written before it was sealed (docs/personal-data.md).

    Each customer's fields are sealed with its key (an erased customer's become unreadable),
    the delivery log's messages lose the personal fields they carried, and the projections
    whose rows held them are folded again. Running it again does nothing."""
    settings = database_settings()
    ledger = build_ledger(settings)
    try:
        sealed = seal_old_events(ledger)
        cleaned = delivery_log_for(ledger).drop_personal_fields(PERSONAL_FIELDS)
        catch_up(build_runner(settings, ledger))
    finally:
        ledger.close()
    click.echo(f"{sealed} events sealed; {cleaned} messages of the delivery log cleaned.")
