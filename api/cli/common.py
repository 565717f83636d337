"""What every command of the command line shares: the settings read (and refused) the same
way, logging, the progress bars on standard error, and errors told as click's.

A leaf: it imports none of the other command modules, so that each of them can import it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, ProgressColumn, TextColumn

from subledger.adapters.store import StoreURLError, store_kind
from subledger.api.logs import LogFormatError, configure_logging, log_format
from subledger.api.settings import Settings


def read_settings() -> Settings:
    """The settings of the environment; refused, with pydantic's reasons, if invalid."""
    try:
        return Settings()
    except ValidationError as error:
        raise click.ClickException(f"invalid settings:\n{error}") from None


def database_settings() -> Settings:
    """The settings of a command that works on a database another process can share: a
    `memory://` store is refused."""
    settings = read_settings()
    try:
        kind = store_kind(settings.database_url)
    except StoreURLError as error:
        raise click.ClickException(str(error)) from None
    if kind == "memory":
        raise click.ClickException("memory:// lives inside one process; use sqlite or postgresql")
    return settings


@contextmanager
def refused(*errors: type[Exception]) -> Iterator[None]:
    """Tell any of `errors` raised in the block as a command's error (exit code 1)."""
    try:
        yield
    except errors as error:
        raise click.ClickException(str(error)) from None


def log_at(level: str) -> None:
    """Log at `level` (`info`, ...) to standard error, one line a record, as text or JSON
    (`SUBLEDGER_LOG_FORMAT`, api/logs.py)."""
    with refused(LogFormatError):
        configure_logging(level)


def announce(line: str) -> None:
    """A long-running command's line about itself (what it serves or folds, that it stopped)
    on standard error: as a log record where the logs are JSON, so every line there is one."""
    if log_format() == "json":
        logging.getLogger("subledger.api").info("%s", line)
    else:
        click.echo(line, err=True)


def redact(url: str) -> str:
    """A database URL without its password, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def progress_bar(*columns: ProgressColumn) -> Progress:
    """A progress display on standard error (standard output stays the command's answer)."""
    return Progress(*columns, console=Console(stderr=True))


def counter() -> Progress:
    """A progress display that counts what is done, towards no known total."""
    return progress_bar(TextColumn("[bold]{task.description}"), MofNCompleteColumn())


@contextmanager
def stdout() -> Iterator[TextIO]:
    """Standard output, as a file a command writes to (and does not close)."""
    yield sys.stdout
