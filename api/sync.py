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
import os
import threading
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from subledger.adapters.backends import Backend, backend_of
from subledger.adapters.sync.billy import BillyTarget
from subledger.adapters.sync.common import (
    CUSTOMER_KINDS,
    KIND_SETTINGS,
    MATCH_FIELDS,
    TargetSettings,
    vat_percent,
)
from subledger.adapters.sync.dinero import AUTH_PATH as DINERO_AUTH_PATH
from subledger.adapters.sync.dinero import DEFAULT_AUTH_URL as DINERO_AUTH_URL
from subledger.adapters.sync.dinero import DEFAULT_URL as DINERO_URL
from subledger.adapters.sync.dinero import DineroTarget
from subledger.adapters.sync.dispatcher import (
    MODES,
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
from subledger.api.folding import caught_up_snapshots
from subledger.api.settings import Configuration, ConfigurationError, Settings
from subledger.domain.chart import Chart
from subledger.domain.ledger import Ledger
from subledger.projections.runner import ProjectionRunner

log = logging.getLogger("subledger.sync")

_TARGET_KEYS = {
    "kind",
    "url",
    "token",
    "book",
    "email",
    "e_invoice",
    "match",
    "direction",
    "poll_seconds",
    "requests_per_minute",
    "timeout_seconds",
    "products",
    "accounts",
    "payment_terms",
    "mode",
    "every",
    "kinds",
}
_BILLY_KEYS = {"products", "rounding_product", "create_products"}
_DINERO_KEYS = {
    "organization_id",
    "client_id",
    "client_secret",
    "token_url",
    "vat_accounts",
    "rounding_account",
}
#: The longest payment terms a target is given, in days.
_MAX_TERMS_DAYS = 365
_DEFAULT_URLS = {"billy": "https://api.billysbilling.com/v2", "dinero": DINERO_URL}
_DEFAULT_RATES = {"billy": 300, "dinero": 100}


def read_targets(
    settings: Settings, configuration: Configuration | None = None
) -> list[TargetSettings]:
    """The targets of the configuration file (as read at start-up, else read now), each
    checked; a token from SUBLEDGER_TARGET_<NAME>_TOKEN wins over the file's."""
    if configuration is None:
        configuration = Configuration.read(settings)
    tables = configuration.tables.get("targets", {})
    if not isinstance(tables, dict):
        raise ConfigurationError(f"{configuration.path}: [targets] must hold tables")
    return [_target(configuration.path, name, table) for name, table in sorted(tables.items())]


def _target(path: Path, name: str, table: Any) -> TargetSettings:
    where = f"{path}: [targets.{name}]"
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where} must be a table")
    kind = table.get("kind", name)
    if kind not in _DEFAULT_URLS:
        raise ConfigurationError(f"{where}: kind must be 'billy' or 'dinero' (got {kind!r})")
    allowed = _TARGET_KEYS | (_DINERO_KEYS if kind == "dinero" else _BILLY_KEYS)
    unknown = sorted(set(table) - allowed - ({"products"} if kind == "dinero" else set()))
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {', '.join(unknown)}")
    if kind == "dinero" and "products" in table:
        raise ConfigurationError(
            f"{where}: Dinero's invoice lines name accounts, not products: map VAT rates to"
            " accounts with vat_accounts instead"
        )
    token = _secret(name, "TOKEN", table.get("token"))
    if not token:
        raise ConfigurationError(
            f"{where}: no token (set SUBLEDGER_TARGET_{name.upper()}_TOKEN or token = ...)"
        )
    match = table.get("match", "customer_number")
    if match not in MATCH_FIELDS:
        raise ConfigurationError(f"{where}: match must be one of {', '.join(MATCH_FIELDS)}")
    for mapping in ("products", "accounts", "vat_accounts"):
        value = table.get(mapping, {})
        if not isinstance(value, dict) or not all(isinstance(v, str | int) for v in value.values()):
            raise ConfigurationError(f"{where}: {mapping} must map names to numbers or names")
    url = str(table.get("url", _DEFAULT_URLS[kind])).rstrip("/")
    own: dict[str, Any] = {"payment_terms": _payment_terms(where, table.get("payment_terms", {}))}
    own["kinds"] = _kinds(where, table.get("kinds", {}))
    if kind == "dinero":
        own |= _dinero_settings(name, where, table, url)
    elif "rounding_product" in table:
        own["rounding_product"] = _name(where, "rounding_product", table["rounding_product"])
    if "create_products" in table:
        if not isinstance(table["create_products"], bool):
            raise ConfigurationError(f"{where}: create_products must be true or false")
        own["create_products"] = table["create_products"]
    try:
        return TargetSettings(
            name=name,
            kind="dinero" if kind == "dinero" else "billy",
            url=url,
            token=str(token),
            book=bool(table.get("book", True)),
            email=bool(table.get("email", False)),
            e_invoice=bool(table.get("e_invoice", False)),
            match=match,
            requests_per_minute=int(table.get("requests_per_minute", _DEFAULT_RATES[kind])),
            timeout_seconds=float(table.get("timeout_seconds", 20)),
            products={str(k): str(v) for k, v in table.get("products", {}).items()},
            accounts={str(k): str(v) for k, v in table.get("accounts", {}).items()},
            **_direction(where, table),
            **own,
        )
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{where}: {error}") from None


def read_schedules(
    settings: Settings, configuration: Configuration | None = None
) -> dict[str, Schedule]:
    """Per target, when it is sent to: `mode = "continuous"` (the default), `"scheduled"`
    with `every = "3h"` (a whole number and `s`, `m`, `h` or `d`), or `"manual"`."""
    if configuration is None:
        configuration = Configuration.read(settings)
    tables = configuration.tables.get("targets", {})
    if not isinstance(tables, dict):
        raise ConfigurationError(f"{configuration.path}: [targets] must hold tables")
    return {
        str(name): _schedule(configuration.path, str(name), table)
        for name, table in sorted(tables.items())
        if isinstance(table, dict)
    }


def _schedule(path: Path, name: str, table: dict[str, Any]) -> Schedule:
    mode = table.get("mode", "continuous")
    if mode not in MODES:
        raise ConfigurationError(
            f"{path}: targets.{name}.mode: must be one of {', '.join(MODES)} (got {mode!r})"
        )
    every = table.get("every")
    if mode != "scheduled":
        if every is not None:
            raise ConfigurationError(
                f"{path}: targets.{name}.every: only a scheduled target has a period"
                ' (mode = "scheduled")'
            )
        return Schedule(mode)
    if every is None:
        raise ConfigurationError(
            f'{path}: targets.{name}.every: a scheduled target needs its period, as "3h"'
        )
    try:
        return Schedule(mode, period_seconds(every))
    except ValueError as error:
        raise ConfigurationError(f"{path}: targets.{name}.every: {error}") from None


def _direction(where: str, table: dict[str, Any]) -> dict[str, Any]:
    """`direction` (`push`, the default, or `both`: payments registered at the target are
    taken in) and `poll_seconds` (how often, 60 by default; at least 1)."""
    direction = table.get("direction", "push")
    if direction not in ("push", "both"):
        raise ConfigurationError(f"{where}: direction must be 'push' or 'both' (got {direction!r})")
    seconds = table.get("poll_seconds", 60)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 1:
        raise ConfigurationError(f"{where}: poll_seconds must be a number of seconds, at least 1")
    return {"direction": direction, "poll_seconds": float(seconds)}


def _payment_terms(where: str, table: Any) -> dict[str, int]:
    """`payment_terms`: payment methods (and `default`) → whole days from 0 to 365."""
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where}: payment_terms must map payment methods to days")
    terms = {}
    for method, days in table.items():
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= _MAX_TERMS_DAYS:
            raise ConfigurationError(
                f"{where}: payment_terms.{method} must be whole days from 0 to {_MAX_TERMS_DAYS}"
                f" (got {days!r})"
            )
        terms[str(method)] = days
    return terms


def _kinds(where: str, table: Any) -> dict[str, dict[str, bool]]:
    """`kinds`: a kind of customer (person, company, public) → its own book, email and
    e_invoice (true or false), e.g. `kinds.public = { e_invoice = true }`."""
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where}: kinds must map kinds of customer to tables")
    kinds = {}
    for kind, settings in table.items():
        if kind not in CUSTOMER_KINDS:
            raise ConfigurationError(
                f"{where}: kinds.{kind}: a kind of customer is one of {', '.join(CUSTOMER_KINDS)}"
            )
        if not isinstance(settings, dict):
            raise ConfigurationError(f"{where}: kinds.{kind} must be a table")
        for key, value in settings.items():
            if key not in KIND_SETTINGS:
                raise ConfigurationError(
                    f"{where}: kinds.{kind}.{key}: a kind sets only {', '.join(KIND_SETTINGS)}"
                )
            if not isinstance(value, bool):
                raise ConfigurationError(f"{where}: kinds.{kind}.{key} must be true or false")
        kinds[str(kind)] = dict(settings)
    return kinds


def _name(where: str, key: str, value: Any) -> str:
    """A product or account number given as a string or a whole number."""
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise ConfigurationError(f"{where}: {key} must be a product or account number")
    return str(value)


def _account_number(where: str, table: dict[str, Any]) -> str:
    """Dinero's `rounding_account`: an account number (Dinero's are whole numbers)."""
    number = _name(where, "rounding_account", table["rounding_account"])
    if not number.isdigit():
        raise ConfigurationError(f"{where}: rounding_account must be an account number")
    return number


def _secret(name: str, what: str, configured: Any) -> Any:
    """A credential from SUBLEDGER_TARGET_<NAME>_<WHAT>, else from the file."""
    return os.environ.get(f"SUBLEDGER_TARGET_{name.upper()}_{what}") or configured


def _dinero_settings(name: str, where: str, table: dict[str, Any], url: str) -> dict[str, Any]:
    """The organization, the client and the token endpoint of a Dinero target: Dinero's own
    (authz.dinero.dk) for Dinero's API, else the same host's (as the sandbox serves it)."""
    organization = str(table.get("organization_id", ""))
    if not organization.isdigit():
        raise ConfigurationError(f"{where}: organization_id must be the organization's number")
    secret = _secret(name, "CLIENT_SECRET", table.get("client_secret"))
    if not table.get("client_id") or not secret:
        raise ConfigurationError(
            f"{where}: client_id and client_secret are needed (the secret better in"
            f" SUBLEDGER_TARGET_{name.upper()}_CLIENT_SECRET)"
        )
    vat_accounts = {}
    for rate, account in table.get("vat_accounts", {}).items():
        try:
            vat_accounts[vat_percent(str(Decimal(str(rate)) / 100))] = str(account)
        except ArithmeticError:
            raise ConfigurationError(
                f"{where}: vat_accounts keys are VAT rates in percent (got {rate!r})"
            ) from None
    default_auth = DINERO_AUTH_URL if url == DINERO_URL else f"{url}{DINERO_AUTH_PATH}"
    return {
        "organization_id": organization,
        "client_id": str(table["client_id"]),
        "client_secret": str(secret),
        "token_url": str(table.get("token_url", default_auth)),
        "vat_accounts": vat_accounts,
        **(
            {"rounding_account": _account_number(where, table)}
            if "rounding_account" in table
            else {}
        ),
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
    table = configuration.tables.get("notifications")
    if table is None:
        return None
    where = f"{configuration.path}: [notifications]"
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where} must be a table")
    known = {
        "webhook_url",
        "smtp_host",
        "smtp_port",
        "smtp_from",
        "smtp_to",
        "smtp_user",
        "smtp_password",
        "smtp_security",
        "smtp_starttls",
        "smtp_ca_file",
        "smtp_insecure",
    }
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {', '.join(unknown)}")
    try:
        recipients = table.get("smtp_to", ())
        port = int(table.get("smtp_port", 25))
        insecure = table.get("smtp_insecure", False)
        if not isinstance(insecure, bool):
            raise ValueError(f"smtp_insecure must be true or false (got {insecure!r})")
        ca_file = table.get("smtp_ca_file")
        notify = NotifySettings(
            webhook_url=table.get("webhook_url"),
            smtp_host=table.get("smtp_host"),
            smtp_port=port,
            smtp_from=str(table.get("smtp_from", "subledger@localhost")),
            smtp_to=(recipients,) if isinstance(recipients, str) else tuple(recipients),
            smtp_user=table.get("smtp_user"),
            smtp_password=os.environ.get("SUBLEDGER_SMTP_PASSWORD") or table.get("smtp_password"),
            smtp_security=smtp_security(
                table.get("smtp_security"), table.get("smtp_starttls"), port
            ),
            smtp_ca_file=None if ca_file is None else str(configuration.path.parent / str(ca_file)),
            smtp_insecure=insecure,
        )
        check_notifications(notify)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{where}: {error}") from None
    except OSError as error:
        raise ConfigurationError(f"{where}: smtp_ca_file {ca_file!r}: {error}") from None
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
            inserted = enqueue_messages(
                self.delivery, rows["outbox"], position, names, _now(), fingerprint, held
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
