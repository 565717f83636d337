"""The composition root: settings in, a wired ledger and key ring out. Nothing runs at import."""

from __future__ import annotations

import gc
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from subledger.adapters.api_keys import StoredKey
from subledger.adapters.backends import (
    Backend,
    Notifications,
    backend_of,
    key_store_for,
    row_store_for,
)
from subledger.adapters.follow import fold_turn, leader_reaches
from subledger.adapters.store import store_env, store_kind
from subledger.api.api_keys import KeyRing, parse_keys
from subledger.api.settings import Settings
from subledger.domain.chart import Chart, ChartError
from subledger.domain.ledger import Ledger
from subledger.projections.engine import Projection
from subledger.projections.journal import JournalProjection
from subledger.projections.mrr import MrrProjection
from subledger.projections.outbox import OutboxProjection
from subledger.projections.revenue import RevenueProjection
from subledger.projections.runner import ProjectionMovedError, ProjectionRunner


def build_ledger(settings: Settings) -> Ledger:
    """The ledger on the store named by `settings.database_url` (tables created if missing)."""
    return Ledger(env=store_env(settings.database_url, settings.store_options()))


def build_keys(settings: Settings) -> KeyRing:
    """The environment's keys; the stored ones join when the app attaches its ledger's store."""
    return KeyRing(
        parse_keys(settings.api_keys.get_secret_value()), cache_seconds=settings.key_cache_seconds
    )


def read_stored_keys(settings: Settings) -> list[StoredKey]:
    """The keys made with `subledger keys create` in the database (none on a memory store)."""
    if store_kind(settings.database_url) == "memory":
        return []
    ledger = build_ledger(settings)
    try:
        return key_store_for(ledger).all()
    finally:
        ledger.close()


def describe_store(settings: Settings) -> str:
    return store_kind(settings.database_url)


def build_projections(settings: Settings) -> list[Projection]:
    """Every projection the service keeps, configured from the settings."""
    return [
        RevenueProjection(default_policy=settings.recognition),
        MrrProjection(),
        JournalProjection(default_policy=settings.recognition),
        OutboxProjection(),
    ]


class ConfigurationError(Exception):
    """A configuration file that cannot be used, with where and what is wrong."""


def read_configuration(settings: Settings) -> dict[str, Any]:
    """The configuration file's tables; none where the default file is missing."""
    path = settings.config
    if not path.exists():
        if "config" in settings.model_fields_set:
            raise ConfigurationError(f"{path}: no such file (SUBLEDGER_CONFIG)")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"{path}: {error}") from None


def build_chart(settings: Settings) -> Chart:
    """The chart of accounts: the defaults, changed by the `[accounts]` table of the
    configuration file."""
    accounts = read_configuration(settings).get("accounts", {})
    if not isinstance(accounts, dict):
        raise ConfigurationError(f"{settings.config}: [accounts] must be a table")
    try:
        return Chart.from_mapping(accounts)
    except ChartError as error:
        raise ConfigurationError(f"{settings.config}: {error}") from None


def build_runner(settings: Settings, ledger: Ledger) -> ProjectionRunner:
    """A runner of every projection, on the store beside the ledger's log."""
    return ProjectionRunner(
        ledger, row_store_for(ledger), build_projections(settings), settings.projection_page_size
    )


def tune_garbage_collector() -> None:
    """Freeze what start-up allocated and collect young objects less often (in a server or a
    projection worker).

    A 1,000-event batch allocates a few hundred thousand short-lived objects; with the default
    thresholds the collector's passes took about a third of an append's time (measured with
    bench/append.py), and a quarter of folding the MRR projection (bench/mrr.py). The ledger's
    and the projections' objects are freed by reference counting; cycles are rare,
    so collecting them later costs little memory.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def catch_up(runner: ProjectionRunner, backend: Backend | None = None) -> None:
    """Bring the projections at least to the end of the log as it is now.

    Where another process leads the folding (`serve` or `subledger project` on PostgreSQL),
    wait for it to get there rather than fold the same pages beside it: under load the
    dispatcher's once-a-second catch-up folded every page a second time and read every kept
    table again, and the leader fell further behind. Folding here, what another process folds
    first counts: chasing a log that keeps growing, a second folder lost page after page to
    the first (the dispatcher enqueued nothing while the appends lasted)."""
    end = runner.log.last_position()
    with fold_turn(_notifications(runner, backend)) as mine:
        if not mine and leader_reaches(runner, end):
            return
        runner.prepare()
        while True:
            try:
                runner.catch_up(upto=end)
                return
            except ProjectionMovedError:
                continue


def _notifications(runner: ProjectionRunner, backend: Backend | None) -> Notifications | None:
    """Where the runner's log announces appends (to find whether another process leads the
    folding): its backend's, the given one or the one its ledger is found on."""
    log = runner.log
    if not isinstance(log, Ledger):
        return None  # a log with no store under it: no other process can fold it
    return (backend or backend_of(log)).notifications(log)


@contextmanager
def caught_up_snapshots(
    runner: ProjectionRunner, *names: str, backend: Backend | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The named projections' stored rows, caught up to the end of the log and all at one
    position (read again if another process folded between two of the reads)."""
    while True:
        catch_up(runner, backend)
        with ExitStack() as stack:
            taken = {name: stack.enter_context(runner.store.snapshot(name)) for name in names}
            positions = {position for position, _ in taken.values()}
            if len(positions) == 1:
                yield positions.pop(), {name: rows for name, (_, rows) in taken.items()}
                return
