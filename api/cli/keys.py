"""`subledger keys`: make, list and revoke the API keys kept (hashed) in the service's database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
import orjson
from rich.console import Console
from rich.table import Table

from subledger.adapters.api_keys import ApiKeyStore
from subledger.api.api_keys import (
    SCOPES,
    ApiKeyRing,
    InvalidKeyError,
    KeyConfigurationError,
    KeyConflictError,
    KeyNotFoundError,
    create_key,
    describe_keys,
    revoke_key,
)
from subledger.api.cli.common import database_settings, refused
from subledger.api.composition import Composition


@contextmanager
def _keys() -> Iterator[tuple[ApiKeyStore, ApiKeyRing]]:
    """The database's key store, and the environment's keys (whose names are taken)."""
    composition = Composition(database_settings())
    with refused(KeyConfigurationError):
        ring = composition.keys
    ledger = composition.open_ledger()
    try:
        yield composition.key_store(ledger), ring
    finally:
        ledger.close()


@click.group()
def keys() -> None:
    """API keys kept in the database (beside those of SUBLEDGER_API_KEYS)."""


@keys.command()
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="A scope of the key (repeat for several).",
)
def create(name: str, scopes: tuple[str, ...]) -> None:
    """Make a key NAME and print its secret, once: only a hash of it is kept."""
    with _keys() as (store, ring):
        try:
            key, secret = create_key(store, ring, name, scopes, datetime.now(UTC))
        except (InvalidKeyError, KeyConflictError) as error:
            raise click.ClickException(str(error)) from None
    click.echo(
        f"made key {key.name} ({' '.join(sorted(key.scopes))}); its secret, shown only now:",
        err=True,
    )
    click.echo(secret)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON.")
def list_keys(as_json: bool) -> None:
    """Every key, from the environment and from the database, revoked ones too; no secret."""
    with _keys() as (store, ring):
        described = describe_keys(ring, store.all())
    if as_json:
        click.echo(orjson.dumps({"keys": described}, option=orjson.OPT_UTC_Z).decode())
        return
    table = Table("name", "source", "scopes", "created", "revoked", box=None)
    for key in described:
        table.add_row(
            key["name"],
            key["source"],
            " ".join(key["scopes"]),
            f"{key['created_at']:%Y-%m-%d %H:%M:%S}" if key["created_at"] else "-",
            f"{key['revoked_at']:%Y-%m-%d %H:%M:%S}" if key["revoked_at"] else "-",
        )
    Console().print(table)


@keys.command()
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke the key NAME: refused from now on (by running servers within
    SUBLEDGER_KEY_CACHE_SECONDS)."""
    with _keys() as (store, ring):
        try:
            revoked = revoke_key(store, ring, name, datetime.now(UTC))
        except (KeyNotFoundError, KeyConflictError) as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"revoked key {revoked.name} at {revoked.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
