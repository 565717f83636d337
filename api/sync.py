"""Syncing wired up: targets and notifications from the configuration file, the delivery log
beside the ledger, and the loop that keeps the outbox moving (`subledger sync run`, and
`subledger serve` when targets are configured).

Configuration (`subledger.toml`), one table per target:

    [targets.billy]
    kind = "billy"                      # the table's name when it is billy or dinero
    url = "https://api.billysbilling.com/v2"
    token = "..."                       # better: SUBLEDGER_TARGET_BILLY_TOKEN in the environment
    book = true                         # approve invoices and credit notes, book vouchers
    email = false                       # e-mail invoices to the customer's e-mail
    e_invoice = false                   # e-invoice public customers by their EAN
    match = "customer_number"           # or vat_number, ean, email
    requests_per_minute = 300
    timeout_seconds = 20
    products = { plan_pro = "PRO" }     # our product id → the target's product number
    accounts = { "5810" = "5820" }      # our account number → the target's

    [notifications]
    webhook_url = "https://example.com/hooks/subledger"
    smtp_host = "localhost"
    smtp_port = 25
    smtp_from = "subledger@example.com"
    smtp_to = ["finance@example.com"]
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.store.postgres import PostgresLedgerRecorder
from adapters.store.sqlite import SQLiteLedgerRecorder
from adapters.sync.billy import MATCH_FIELDS, BillyTarget, TargetSettings
from adapters.sync.dispatcher import (
    Dispatcher,
    DispatchSettings,
    enqueue_messages,
    enqueue_vouchers,
)
from adapters.sync.http import RequestBudget
from adapters.sync.log import DeliveryLog
from adapters.sync.notify import Notifier, NotifySettings
from adapters.sync.port import Target
from api.bootstrap import (
    ConfigurationError,
    build_chart,
    caught_up_snapshots,
    read_configuration,
)
from api.settings import Settings
from domain.chart import Chart
from domain.ledger import Ledger
from projections.runner import ProjectionRunner

log = logging.getLogger("subledger.sync")

_TARGET_KEYS = {
    "kind",
    "url",
    "token",
    "book",
    "email",
    "e_invoice",
    "match",
    "requests_per_minute",
    "timeout_seconds",
    "products",
    "accounts",
}
_DEFAULT_URLS = {"billy": "https://api.billysbilling.com/v2"}


def read_targets(settings: Settings) -> list[TargetSettings]:
    """The configured targets, each checked; a token from SUBLEDGER_TARGET_<NAME>_TOKEN wins
    over the file's."""
    tables = read_configuration(settings).get("targets", {})
    if not isinstance(tables, dict):
        raise ConfigurationError(f"{settings.config}: [targets] must hold tables")
    return [_target(settings, name, table) for name, table in sorted(tables.items())]


def _target(settings: Settings, name: str, table: Any) -> TargetSettings:
    where = f"{settings.config}: [targets.{name}]"
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where} must be a table")
    unknown = sorted(set(table) - _TARGET_KEYS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {', '.join(unknown)}")
    kind = table.get("kind", name)
    if kind == "dinero":
        raise ConfigurationError(f"{where}: kind 'dinero' is not supported yet")
    if kind != "billy":
        raise ConfigurationError(f"{where}: kind must be 'billy' (got {kind!r})")
    token = os.environ.get(f"SUBLEDGER_TARGET_{name.upper()}_TOKEN") or table.get("token")
    if not token:
        raise ConfigurationError(
            f"{where}: no token (set SUBLEDGER_TARGET_{name.upper()}_TOKEN or token = ...)"
        )
    match = table.get("match", "customer_number")
    if match not in MATCH_FIELDS:
        raise ConfigurationError(f"{where}: match must be one of {', '.join(MATCH_FIELDS)}")
    for mapping in ("products", "accounts"):
        value = table.get(mapping, {})
        if not isinstance(value, dict) or not all(isinstance(v, str | int) for v in value.values()):
            raise ConfigurationError(f"{where}: {mapping} must map names to numbers or names")
    try:
        return TargetSettings(
            name=name,
            kind="billy",
            url=str(table.get("url", _DEFAULT_URLS[kind])),
            token=str(token),
            book=bool(table.get("book", True)),
            email=bool(table.get("email", False)),
            e_invoice=bool(table.get("e_invoice", False)),
            match=match,
            requests_per_minute=int(table.get("requests_per_minute", 300)),
            timeout_seconds=float(table.get("timeout_seconds", 20)),
            products={str(k): str(v) for k, v in table.get("products", {}).items()},
            accounts={str(k): str(v) for k, v in table.get("accounts", {}).items()},
        )
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{where}: {error}") from None


def read_notifications(settings: Settings) -> NotifySettings | None:
    table = read_configuration(settings).get("notifications")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigurationError(f"{settings.config}: [notifications] must be a table")
    try:
        recipients = table.get("smtp_to", ())
        return NotifySettings(
            webhook_url=table.get("webhook_url"),
            smtp_host=table.get("smtp_host"),
            smtp_port=int(table.get("smtp_port", 25)),
            smtp_from=str(table.get("smtp_from", "subledger@localhost")),
            smtp_to=(recipients,) if isinstance(recipients, str) else tuple(recipients),
            smtp_user=table.get("smtp_user"),
            smtp_password=os.environ.get("SUBLEDGER_SMTP_PASSWORD") or table.get("smtp_password"),
            smtp_starttls=bool(table.get("smtp_starttls", False)),
        )
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{settings.config}: [notifications]: {error}") from None


def delivery_log_for(ledger: Ledger) -> DeliveryLog:
    """The delivery log in the ledger's own database."""
    recorder = ledger.recorder
    if isinstance(recorder, PostgresLedgerRecorder | SQLiteLedgerRecorder):
        delivery = DeliveryLog(recorder.datastore)
        delivery.create_tables()
        return delivery
    raise ConfigurationError("syncing needs a database: use sqlite:/// or postgresql://")


def _now() -> datetime:
    return datetime.now(UTC)


class Sync:
    """The delivery log, the targets and the dispatcher of one process."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        runner: ProjectionRunner,
    ) -> None:
        self.chart: Chart = build_chart(settings)
        self.target_settings = read_targets(settings)
        notifications = read_notifications(settings)
        self.runner = runner
        self.delivery = delivery_log_for(ledger)
        self.targets: dict[str, Target] = {
            t.name: BillyTarget(t, self.chart, budget=self._budget(t)) for t in self.target_settings
        }
        self.dispatcher = Dispatcher(
            self.delivery,
            self.targets,
            _dispatch_settings(settings),
            Notifier(notifications) if notifications else None,
        )
        self._vouchered: tuple[int, str] | None = None

    def _budget(self, target: TargetSettings) -> RequestBudget:
        def reserve(count: int, now: datetime) -> float:
            return self.delivery.take_requests(target.name, target.requests_per_minute, now, count)

        return RequestBudget(reserve, target.requests_per_minute)

    def close(self) -> None:
        for target in self.targets.values():
            target.close()

    def enqueue(self) -> int:
        """Bring the outbox and the journal to the end of the log, and pair what is new with
        every target; the number of messages enqueued."""
        names = list(self.targets)
        if not names:
            return 0
        with self.snapshots() as (position, rows):
            fingerprint = self.runner.projections["outbox"].fingerprint()
            inserted = enqueue_messages(
                self.delivery, rows["outbox"], position, names, _now(), fingerprint
            )
            today = _now().date()
            if self._vouchered != (position, today.isoformat()):
                inserted += enqueue_vouchers(
                    self.delivery, rows["journal"], self.chart, names, today
                )
                self._vouchered = (position, today.isoformat())
        return inserted

    def snapshots(self) -> AbstractContextManager[tuple[int, dict[str, Any]]]:
        """The outbox's and the journal's rows at one position, caught up with the log."""
        return caught_up_snapshots(self.runner, "outbox", "journal")

    def run(self, stop: threading.Event, workers: int = 2, every: float = 1.0) -> None:
        """Enqueue every `every` seconds and deliver with `workers` threads until `stop`."""
        threads = [
            threading.Thread(target=self.dispatcher.work, args=(stop,), name=f"sync-{n}")
            for n in range(workers)
        ]
        for thread in threads:
            thread.start()
        try:
            while not stop.is_set():
                try:
                    self.enqueue()
                except Exception:
                    log.exception("enqueueing failed; trying again")
                stop.wait(every)
        finally:
            stop.set()
            for thread in threads:
                thread.join()


def _dispatch_settings(settings: Settings) -> DispatchSettings:
    return DispatchSettings(
        lease=timedelta(seconds=settings.sync_lease_seconds),
        backoff_base=settings.sync_backoff_seconds,
        backoff_cap=settings.sync_backoff_cap_seconds,
    )
