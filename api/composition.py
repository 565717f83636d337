"""The composition root: the one place where the service is wired, for the HTTP app, every
command and the demo. Nothing runs at import.

A `Composition` is made from the settings (read from the environment once, by whoever starts
the process). It chooses the backend once, from the database URL; it reads the configuration
file once, when first needed (so that a command that needs none of it does not fail on it), and
keeps it; and from those it builds the ledger, the projection runner, the follower, the reader,
the sync service and the key ring.
"""

from __future__ import annotations

import gc
from collections.abc import Collection
from contextlib import AbstractContextManager
from functools import cached_property
from pathlib import Path
from typing import Any

from subledger.adapters.api_keys import ApiKeyStore, StoredApiKey
from subledger.adapters.backends import Backend, backend_for
from subledger.adapters.log_follower import Follower, fold_owners
from subledger.adapters.store import store_env
from subledger.adapters.sync.log import DeliveryLog
from subledger.api.api_keys import ApiKeyRing, parse_api_keys
from subledger.api.folding import catch_up, caught_up_snapshots
from subledger.api.http.metrics import count_target_requests
from subledger.api.http.projection_reads import Reader
from subledger.api.settings import Configuration, ConfigurationError, Settings
from subledger.api.sync import Sync, delivery_log_for
from subledger.domain.chart import Chart, ChartError
from subledger.domain.ledger import Ledger
from subledger.projections.engine import Projection
from subledger.projections.journal import JournalProjection
from subledger.projections.mrr import MrrProjection
from subledger.projections.outbox import OutboxProjection
from subledger.projections.revenue import RevenueProjection
from subledger.projections.runner import ProjectionRunner


class Composition:
    """The service wired from its settings: the backend chosen once, the configuration file read
    once, and a builder for each part."""

    def __init__(
        self,
        settings: Settings,
        configuration: Configuration | None = None,
        backend: Backend | None = None,
    ) -> None:
        """`configuration` is the file as already read, `backend` the one already chosen (else
        each is when first needed)."""
        self.settings = settings
        self._configuration = configuration
        self._backend = backend

    @property
    def backend(self) -> Backend:
        """The backend of the database URL (`StoreURLError` if it names none)."""
        if self._backend is None:
            self._backend = backend_for(self.settings.database_url)
        return self._backend

    @property
    def configuration(self) -> Configuration:
        """The configuration file's tables, read the first time they are asked for
        (`ConfigurationError` if the file cannot be used)."""
        if self._configuration is None:
            self._configuration = Configuration.read(self.settings)
        return self._configuration

    @cached_property
    def chart(self) -> Chart:
        """The chart of accounts: the defaults, changed by the `[accounts]` table."""
        return build_chart(self.configuration)

    @cached_property
    def keys(self) -> ApiKeyRing:
        """The process's key ring: the environment's keys (`KeyConfigurationError` if they
        cannot be used); the stored ones join when a ledger's key store is attached."""
        return ApiKeyRing(
            parse_api_keys(self.settings.api_keys.get_secret_value()),
            cache_seconds=self.settings.key_cache_seconds,
        )

    def with_configuration(self, path: Path) -> Composition:
        """The same service with the configuration file at `path` instead (read now)."""
        settings = self.settings.model_copy(update={"config": path})
        return Composition(settings, Configuration.read(settings), self._backend)

    # The store.

    def open_ledger(self) -> Ledger:
        """The ledger on the store of the database URL (tables created if missing); the caller
        closes it."""
        return build_ledger(self.settings)

    def key_store(self, ledger: Ledger) -> ApiKeyStore:
        """The keys of `subledger keys create`, kept in the ledger's database."""
        return self.backend.key_store(ledger)

    def stored_api_keys(self) -> list[StoredApiKey]:
        """The keys made with `subledger keys create` (none on a store that dies with the
        process), read through a ledger of their own."""
        if not self.backend.shared:
            return []
        ledger = self.open_ledger()
        try:
            return self.key_store(ledger).all()
        finally:
            ledger.close()

    # The projections.

    def runner(self, ledger: Ledger) -> ProjectionRunner:
        """A runner of every projection, on the row store beside the ledger's log."""
        return build_runner(self.settings, ledger, self.backend)

    def partitions_differ(self) -> str | None:
        """What is wrong if the store holds the projections folded in another number of
        partitions than the settings give (`ProjectionRunner.partitions_differ`); None if it
        does not, or dies with the process."""
        if not self.backend.shared:
            return None
        ledger = self.open_ledger()
        try:
            return self.runner(ledger).partitions_differ()
        finally:
            ledger.close()

    def fold_owners(self, ledger: Ledger, names: Collection[str]) -> dict[str, str] | None:
        """Which process folds each projection of `names` that one folds now (its pid and
        host); None where the projections are not shared out among processes (SQLite, memory)."""
        notifications = self.backend.notifications(ledger)
        return None if notifications is None else fold_owners(notifications.datastore, names)

    def follower(self, ledger: Ledger, runner: ProjectionRunner) -> Follower:
        """What keeps `runner` folding the ledger's appends, woken as the backend allows."""
        return Follower(ledger, runner, self.backend)

    def reader(self, ledger: Ledger, runner: ProjectionRunner, *, following: bool) -> Reader:
        """The projections as the HTTP routes read them; waiting for this process's folding
        where it is `following` the log, else for another process's through the store."""
        return Reader(
            ledger,
            runner.store,
            runner.projections,
            self.settings.read_wait_seconds,
            runner if following else None,
            runner.partitions,
        )

    def catch_up(self, runner: ProjectionRunner) -> None:
        catch_up(runner, self.backend)

    def caught_up_snapshots(
        self, runner: ProjectionRunner, *names: str
    ) -> AbstractContextManager[tuple[int, dict[str, Any]]]:
        return caught_up_snapshots(runner, *names, backend=self.backend)

    # Syncing.

    def delivery_log(self, ledger: Ledger) -> DeliveryLog:
        """The delivery log in the ledger's database (`ConfigurationError` on a memory store)."""
        return delivery_log_for(ledger, self.backend)

    def sync(self, ledger: Ledger, runner: ProjectionRunner) -> Sync:
        """The sync service: the targets and notifications of the configuration file, the
        delivery log beside the ledger (`ConfigurationError` if either cannot be used)."""
        service = Sync(
            self.settings,
            ledger,
            runner,
            chart=self.chart,
            configuration=self.configuration,
            backend=self.backend,
        )
        count_target_requests(service.targets)  # for GET /metrics
        return service


def build_ledger(settings: Settings, *, migrate: bool = True) -> Ledger:
    """The ledger on the store named by `settings.database_url`: the log's tables made if
    missing, and the schema migrations the database lacks applied (`adapters.migrations`)
    unless `migrate` is false (`subledger migrate` applies them itself, to tell which)."""
    ledger = Ledger(
        env=store_env(settings.database_url, settings.store_options()),
        aggregate_cache_size=settings.aggregate_cache_size,
    )
    if not migrate:
        return ledger
    try:
        backend_for(settings.database_url).migrate(ledger)
    except BaseException:
        ledger.close()
        raise
    return ledger


def build_projections(settings: Settings) -> list[Projection]:
    """Every projection the service keeps, configured from the settings."""
    return [
        RevenueProjection(default_policy=settings.recognition),
        MrrProjection(),
        JournalProjection(default_policy=settings.recognition),
        OutboxProjection(),
    ]


def build_runner(
    settings: Settings, ledger: Ledger, backend: Backend | None = None
) -> ProjectionRunner:
    """A runner of every projection, on the store beside the ledger's log (the backend's of
    the database URL, unless given)."""
    backend = backend or backend_for(settings.database_url)
    return ProjectionRunner(
        ledger,
        backend.row_store(ledger),
        build_projections(settings),
        settings.projection_page_size,
        settings.projection_checkpoint_every,
        settings.projection_partitions,
    )


def build_chart(configuration: Configuration) -> Chart:
    """The chart of accounts: the defaults, changed by the `[accounts]` table of the
    configuration file."""
    accounts = configuration.tables.get("accounts", {})
    if not isinstance(accounts, dict):
        raise ConfigurationError(f"{configuration.path}: [accounts] must be a table")
    try:
        return Chart.from_mapping(accounts)
    except ChartError as error:
        raise ConfigurationError(f"{configuration.path}: {error}") from None


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
