"""`subledger seal`: seal the personal data of a database written before it was sealed."""

from __future__ import annotations

import click

from subledger.adapters.store.resealing import seal_old_events
from subledger.api.cli.common import database_settings
from subledger.api.composition import Composition
from subledger.domain.personal import PERSONAL_FIELDS


@click.command()
def seal() -> None:
    """Seal the personal data of events written before it was sealed (docs/personal-data.md).

    Each customer's fields are sealed with its key (an erased customer's become unreadable),
    the delivery log's messages lose the personal fields they carried, and the projections
    whose rows held them are folded again. Running it again does nothing."""
    composition = Composition(database_settings())
    ledger = composition.open_ledger()
    try:
        sealed = seal_old_events(ledger)
        cleaned = composition.delivery_log(ledger).drop_personal_fields(PERSONAL_FIELDS)
        composition.catch_up(composition.runner(ledger))
    finally:
        ledger.close()
    click.echo(f"{sealed} events sealed; {cleaned} messages of the delivery log cleaned.")
