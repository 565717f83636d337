"""The `subledger` command line."""

from __future__ import annotations

import logging
import sys
from urllib.parse import urlsplit, urlunsplit

import click
import uvicorn
from pydantic import ValidationError

from adapters.store import StoreURLError, store_kind
from api.app import VERSION, create_app
from api.bootstrap import build_keys
from api.keys import KeyConfigurationError
from api.settings import Settings


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise click.ClickException(f"invalid settings:\n{error}") from None


def redact(url: str) -> str:
    """A database URL without its password, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """subledger: an event-sourced revenue ledger for subscription businesses."""


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(f"subledger {VERSION}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes (one per core suits a busy service).",
)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API on the store named by SUBLEDGER_DATABASE_URL (SQLite by default)."""
    settings = _settings()
    try:
        kind = store_kind(settings.database_url)
        keys = build_keys(settings)
    except (KeyConfigurationError, StoreURLError) as error:
        raise click.ClickException(str(error)) from None
    if not len(keys):
        raise click.ClickException(
            "no API keys: set SUBLEDGER_API_KEYS to name:secret:scope+scope[,...], e.g.\n"
            "  SUBLEDGER_API_KEYS='local:<at least 16 characters>:events:write+read+admin'"
        )
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    click.echo(
        f"subledger {VERSION}: {kind} store at {redact(settings.database_url)}, "
        f"{len(keys)} API key(s), {workers} worker(s), on http://{host}:{port}"
        " (docs at /docs)",
        err=True,
    )
    if workers == 1:
        uvicorn.run(
            create_app(settings, keys=keys, server_process=True),
            host=host,
            port=port,
            log_level=settings.log_level,
        )
    else:
        uvicorn.run(
            "api.app:server_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
        )


if __name__ == "__main__":
    sys.exit(main())
