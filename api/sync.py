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
    direction = "push"                  # or "both": take in payments registered at the target,
    poll_seconds = 60                   # asking it this often (docs/sync.md, two-way payments)
    mode = "continuous"                 # or "scheduled" with every = "3h" (s, m, h, d), or
                                        # "manual": sent only when a run is asked for
    products = { plan_pro = "PRO" }     # our product id → the target's product number
    accounts = { "5810" = "5820" }      # our account number → the target's
    payment_terms = { card = 0, mobilepay = 0, bank_transfer = 14, default = 8 }
                                        # days to pay by method, for invoices with no due date
    rounding_product = "rounding"       # a VAT-free product on øreafrunding (credit notes)
    create_products = false             # make a product Billy lacks on first use
    kinds.person = { email = true }     # book, email, e_invoice per kind of customer
    kinds.public = { e_invoice = true } # (person, company, public); else the target's own

    [targets.dinero]
    kind = "dinero"
    url = "https://api.dinero.dk"
    organization_id = "123456"          # the firm id in app.dinero.dk/<id>
    client_id = "..."                   # the integration's client (Dinero's developer portal)
    client_secret = "..."               # better: SUBLEDGER_TARGET_DINERO_CLIENT_SECRET
    token = "..."                       # the organization's API key: SUBLEDGER_TARGET_DINERO_TOKEN
    requests_per_minute = 100           # Dinero's limit per organization
    vat_accounts = { "25" = "7400", "0" = "7410" }  # VAT rate in % → the account lines go to
    rounding_account = "3670"           # VAT-free øreafrunding, for credit notes' rounding lines

    [notifications]
    webhook_url = "https://example.com/hooks/subledger"
    smtp_host = "localhost"
    smtp_port = 25
    smtp_from = "subledger@example.com"
    smtp_to = ["finance@example.com"]
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from subledger.adapters.backends import Backend, backend_of
from subledger.adapters.sync.billy import BillyTarget
from subledger.adapters.sync.common import TargetSettings, vat_percent
from subledger.adapters.sync.dinero import AUTH_PATH as DINERO_AUTH_PATH
from subledger.adapters.sync.dinero import DEFAULT_AUTH_URL as DINERO_AUTH_URL
from subledger.adapters.sync.dinero import DEFAULT_URL as DINERO_URL
from subledger.adapters.sync.dinero import DineroTarget
from subledger.adapters.sync.dispatcher import (
    Dispatcher,
    DispatchSettings,
    Schedule,
    enqueue_messages,
    enqueue_vouchers,
    period_seconds,
)
from subledger.adapters.sync.http import RequestBudget
from subledger.adapters.sync.log import DeliveryLog
from subledger.adapters.sync.notify import Notifier, NotifySettings, smtp_security
from subledger.adapters.sync.notify import check as check_notifications
from subledger.adapters.sync.personal_details import PersonalDetails
from subledger.adapters.sync.poller import PaymentPoller
from subledger.adapters.sync.port import Target
from subledger.api.config import BillyTable, DineroTable, NotificationSecrets, TargetSecrets
from subledger.api.folding import caught_up_snapshots
from subledger.api.settings import Configuration, ConfigurationError, Settings
from subledger.domain.chart import Chart
from subledger.domain.ledger import Ledger
from subledger.projections.runner import ProjectionRunner

log = logging.getLogger("subledger.sync")

#: How long a poll asked for over HTTP may go on beginning targets' polls, in seconds.
_POLL_NOW_SECONDS = 600.0

_DEFAULT_URLS = {"billy": "https://api.billysbilling.com/v2", "dinero": DINERO_URL}
_DEFAULT_RATES = {"billy": 300, "dinero": 100}


def read_targets(
    settings: Settings, configuration: Configuration | None = None
) -> list[TargetSettings]:
    """The targets of the configuration file (as read at start-up, else read now), each
    checked (`api.config`); a credential from the environment wins over the file's."""
    if configuration is None:
        configuration = Configuration.read(settings)
    return [
        _target(configuration.path, name, table)
        for name, table in sorted(configuration.file.targets.items())
    ]


def _target(path: Path, name: str, table: BillyTable | DineroTable) -> TargetSettings:
    where = f"{path}: targets.{name}"
    secrets = TargetSecrets.of(name)
    token = secrets.token or table.token
    if token is None or not token.get_secret_value():
        raise ConfigurationError(
            f"{where}.token: missing (set SUBLEDGER_TARGET_{name.upper()}_TOKEN or token = ...)"
        )
    kind: Literal["billy", "dinero"] = "dinero" if isinstance(table, DineroTable) else "billy"
    url = (table.url or _DEFAULT_URLS[kind]).rstrip("/")
    own: dict[str, Any] = {}
    if isinstance(table, DineroTable):
        own = _dinero_settings(name, where, table, url, secrets)
    else:
        own = {"products": dict(table.products), "create_products": table.create_products}
        if table.rounding_product is not None:
            own["rounding_product"] = table.rounding_product
    return TargetSettings(
        name=name,
        kind=kind,
        url=url,
        token=token.get_secret_value(),
        book=table.book,
        email=table.email,
        e_invoice=table.e_invoice,
        match=table.match,
        requests_per_minute=table.requests_per_minute or _DEFAULT_RATES[kind],
        timeout_seconds=table.timeout_seconds,
        accounts=dict(table.accounts),
        direction=table.direction,
        poll_seconds=table.poll_seconds,
        payment_terms=dict(table.payment_terms),
        kinds={kind: settings.settings() for kind, settings in table.kinds.items()},
        transfer=table.transfer,
        draft_recheck_seconds=period_seconds(table.draft_recheck),
        **own,
    )


def _dinero_settings(
    name: str, where: str, table: DineroTable, url: str, secrets: TargetSecrets
) -> dict[str, Any]:
    """The organization, the client and the token endpoint of a Dinero target: Dinero's own
    (authz.dinero.dk) for Dinero's API, else the same host's (as the sandbox serves it)."""
    secret = secrets.client_secret or table.client_secret
    if secret is None or not secret.get_secret_value():
        raise ConfigurationError(
            f"{where}.client_secret: missing (better in"
            f" SUBLEDGER_TARGET_{name.upper()}_CLIENT_SECRET)"
        )
    vat_accounts = {
        vat_percent(str(Decimal(rate) / 100)): account
        for rate, account in table.vat_accounts.items()
    }
    default_auth = DINERO_AUTH_URL if url == DINERO_URL else f"{url}{DINERO_AUTH_PATH}"
    return {
        "organization_id": table.organization_id,
        "client_id": table.client_id,
        "client_secret": secret.get_secret_value(),
        "token_url": table.token_url or default_auth,
        "vat_accounts": vat_accounts,
        **({} if table.rounding_account is None else {"rounding_account": table.rounding_account}),
    }


def read_schedules(
    settings: Settings, configuration: Configuration | None = None
) -> dict[str, Schedule]:
    """Per target, when it is sent to: `mode = "continuous"` (the default), `"scheduled"`
    with `every = "3h"` (a whole number and `s`, `m`, `h` or `d`), or `"manual"`."""
    if configuration is None:
        configuration = Configuration.read(settings)
    return {
        name: Schedule(table.mode, table.every_seconds())
        for name, table in sorted(configuration.file.targets.items())
    }


def read_notifications(
    settings: Settings, configuration: Configuration | None = None
) -> NotifySettings | None:
    """The `[notifications]` table of the configuration file (as read at start-up, else read
    now), checked: a login over plain text, a CA file that cannot be read or a key that means
    nothing are refused here, at start-up, rather than when the first failure is to be told.
    `smtp_ca_file` is read relative to the configuration file."""
    if configuration is None:
        configuration = Configuration.read(settings)
    table = configuration.file.notifications
    if table is None:
        return None
    where = f"{configuration.path}: notifications"
    password = NotificationSecrets().password or table.smtp_password
    ca_file = table.smtp_ca_file
    try:
        notify = NotifySettings(
            webhook_url=table.webhook_url,
            smtp_host=table.smtp_host,
            smtp_port=table.smtp_port,
            smtp_from=table.smtp_from,
            smtp_to=table.recipients(),
            smtp_user=table.smtp_user,
            smtp_password=None if password is None else password.get_secret_value(),
            smtp_security=smtp_security(table.smtp_security, table.smtp_starttls, table.smtp_port),
            smtp_ca_file=None if ca_file is None else str(configuration.path.parent / ca_file),
            smtp_insecure=table.smtp_insecure,
        )
        check_notifications(notify)
    except ValueError as error:
        raise ConfigurationError(f"{where}: {error}") from None
    except OSError as error:
        raise ConfigurationError(f"{where}.smtp_ca_file: {ca_file!r}: {error}") from None
    return notify


def delivery_log_for(ledger: Ledger, backend: Backend | None = None) -> DeliveryLog:
    """The delivery log in the ledger's own database (its backend's: the given one, or the one
    the ledger is found on), its tables made if missing."""
    database = (backend or backend_of(ledger)).delivery_database(ledger)
    if database is None:
        raise ConfigurationError("syncing needs a database: use sqlite:/// or postgresql://")
    delivery = DeliveryLog(database)
    delivery.create_tables()
    return delivery


def _now() -> datetime:
    return datetime.now(UTC)


class Sync:
    """The delivery log, the targets and the dispatcher of one process (made by the
    composition root, from the configuration it read and the backend it chose)."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        runner: ProjectionRunner,
        *,
        chart: Chart,
        configuration: Configuration,
        backend: Backend,
    ) -> None:
        self.chart = chart
        self.target_settings = read_targets(settings, configuration)
        self.schedules = read_schedules(settings, configuration)
        notifications = read_notifications(settings, configuration)
        self.runner = runner
        self.backend = backend
        self.delivery = delivery_log_for(ledger, backend)
        self.targets: dict[str, Target] = {t.name: self._target(t) for t in self.target_settings}
        notifier = Notifier(notifications) if notifications else None
        self.dispatcher = Dispatcher(
            self.delivery,
            self.targets,
            _dispatch_settings(settings),
            notifier,
            open_message=PersonalDetails(ledger).open,
            redact=PersonalDetails.redact,
        )
        #: Takes in the payments registered at the targets with `direction = "both"`.
        self.poller = PaymentPoller(
            ledger, self.delivery, self.targets, self.target_settings, chart, notifier
        )
        self._vouchered: tuple[int, str] | None = None
        #: One enqueueing at a time: the loop's, and a run's asked for over HTTP.
        self._enqueueing = threading.Lock()
        #: One poll asked for over HTTP at a time (`poll_soon`).
        self._polling = threading.Lock()

    def _target(self, settings: TargetSettings) -> Target:
        if settings.kind == "dinero":
            return DineroTarget(settings, self.chart, budget=self._budget(settings))
        return BillyTarget(settings, self.chart, budget=self._budget(settings))

    def _budget(self, target: TargetSettings) -> RequestBudget:
        """The target's share of requests: Dinero's limit is per organization, so its targets
        share the organization's budget; Billy's is the target's own."""
        key = f"dinero:{target.organization_id}" if target.kind == "dinero" else target.name

        def reserve(count: int, now: datetime) -> float:
            return self.delivery.take_requests(key, target.requests_per_minute, now, count)

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
        with self._enqueueing, self.snapshots() as (position, rows):
            fingerprint = self.runner.projections["outbox"].fingerprint()
            held = [name for name in names if self.schedule(name).holds]
            on_payment = [t.name for t in self.target_settings if t.transfer == "on_payment"]
            inserted = enqueue_messages(
                self.delivery,
                rows["outbox"],
                position,
                names,
                _now(),
                fingerprint,
                held,
                on_payment,
            )
            today = _now().date()
            if self._vouchered != (position, today.isoformat()):
                inserted += enqueue_vouchers(
                    self.delivery, rows["journal"], self.chart, names, today, held
                )
                self._vouchered = (position, today.isoformat())
        return inserted

    def snapshots(self) -> AbstractContextManager[tuple[int, dict[str, Any]]]:
        """The outbox's and the journal's rows at one position, caught up with the log."""
        return caught_up_snapshots(self.runner, "outbox", "journal", backend=self.backend)

    def schedule(self, target: str) -> Schedule:
        """When `target` is sent to (continuous unless its table says otherwise)."""
        return self.schedules.get(target, Schedule())

    def release(self, target: str | None = None) -> dict[str, int]:
        """A run ("sync now") of `target`, or of every target: what the log holds enqueued,
        and every message held for a run made due; per target, the messages released."""
        names = list(self.targets) if target is None else [target]
        self.enqueue()
        now = _now()
        return {name: self.delivery.release(name, now) for name in names}

    def poll(self, deadline: float, names: list[str] | None = None) -> int:
        """One poll of each target with `direction = "both"` (of `names`, else all: a run's,
        `sync run --once`), none begun after `deadline` (`time.monotonic()`); the payments
        taken in. A poll that fails is logged, and left to the next run."""
        appended = 0
        for name in self.poller.names if names is None else names:
            if time.monotonic() >= deadline:
                log.warning("%s was not asked for its payments: the run's time is up", name)
                continue
            try:
                appended += self.poller.poll(name).appended
            except Exception:
                log.exception("polling %s for payments failed; the next run asks again", name)
        return appended

    def poll_soon(self, target: str | None = None) -> list[str]:
        """A run's poll asked for over HTTP ("Sync now"): the two-way targets (`target`, or
        all) asked once for their payments in a thread of its own, so that the answer does not
        wait on them, and what they held released with the run; the targets asked (none while
        the last such poll still runs)."""
        names = [name for name in self.poller.names if target in (None, name)]
        if not names or not self._polling.acquire(blocking=False):
            return []

        def poll() -> None:
            try:
                if self.poll(time.monotonic() + _POLL_NOW_SECONDS, names):
                    self.release(target)
            except Exception:
                log.exception("the payments asked for by a run could not be taken in")
            finally:
                self._polling.release()

        threading.Thread(target=poll, name="poll-now", daemon=True).start()
        return names

    def _rounds(self, due: dict[str, int | None]) -> None:
        """The scheduled targets whose next round has come: everything pending released."""
        now = _now()
        for name in self.targets:
            round_now = self.schedule(name).round_at(now)
            if round_now is None or due.get(name) == round_now:
                continue
            if name in due:
                released = self.delivery.release(name, now)
                log.info("scheduled round of %s: %d message(s) released", name, released)
            due[name] = round_now

    def run(self, stop: threading.Event, workers: int = 2, every: float = 1.0) -> None:
        """Enqueue every `every` seconds and deliver with `workers` threads until `stop`:
        continuous targets at once, scheduled ones at each round of their period (everything
        pending when it comes), manual ones when a run is asked for (`release`)."""
        for name in self.targets:  # a target made continuous again sends what was held
            if not self.schedule(name).holds:
                try:
                    self.delivery.release(name, _now())
                except Exception:
                    log.exception("releasing what %s held failed", name)
        rounds: dict[str, int | None] = {}
        threads = [
            threading.Thread(target=self.dispatcher.work, args=(stop,), name=f"sync-{n}")
            for n in range(workers)
        ]
        if self.poller.names:
            threads.append(threading.Thread(target=self.poller.run, args=(stop,), name="poll"))
        for thread in threads:
            thread.start()
        try:
            while not stop.is_set():
                try:
                    self.enqueue()
                    self._rounds(rounds)
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
        backoff_base_seconds=settings.sync_backoff_seconds,
        backoff_cap_seconds=settings.sync_backoff_cap_seconds,
        max_unexpected_errors=settings.sync_max_unexpected_errors,
    )
