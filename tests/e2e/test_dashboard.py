"""The dashboard at `/`, as a reader uses it: headless Chromium against a real `subledger serve`
on a small demo business, its books synced to a local Billy sandbox that refuses MobilePay
payments (their bank account is mapped to one that takes no payments), so that the Sync page
has failed messages to retry.

Every number the pages show is compared with the API's own answer to the same question. A
screenshot of each page is kept under test-artifacts/dashboard/.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from subledger.api.demo.generator import PRICES
from subledger.api.demo.run import billy_products
from tests.e2e.test_server import free_port, wait_for

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # the dev extra is not installed: said in the skip below
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[2]
SUBLEDGER = str(Path(sys.executable).parent / "subledger")
CHROMIUM = os.environ.get("SUBLEDGER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"

ADMIN_KEY = "dashboard-admin-key-0123456789"
READ_KEY = "dashboard-read-key-0123456789"
KEYS = f"admin:{ADMIN_KEY}:events:write+read+admin,reader:{READ_KEY}:read"
BILLY_TOKEN = "dashboard-billy-token"
ZONE = "Europe/Copenhagen"
FIRST, LAST = "2025-07", "2026-06"
DEMO = ["--customers", "20", "--years", "1", "--seed", "3", "--until", LAST, "--no-sync"]

LATE_CUSTOMER = "cus_dashboard_late"
#: Appended after the instant the "known at" tests look back to.
LATE_EVENTS = [
    {
        "id": "evt_dashboard_late_1",
        "type": "customer.created",
        "data": {
            "customer_id": LATE_CUSTOMER,
            "name": "Late Arrival ApS",
            "country": "DK",
            "kind": "company",
            "customer_number": "99001",
        },
    },
    {
        "id": "evt_dashboard_late_2",
        "type": "subscription.started",
        "data": {
            "subscription_id": "sub_dashboard_late",
            "customer_id": LATE_CUSTOMER,
            "start_date": "2026-06-01",
            "currency": "DKK",
            "interval": "month",
            "items": [{"product_id": "plan_49900", "quantity": "3", "unit_amount": 49900}],
        },
    },
    {
        "id": "evt_dashboard_late_3",
        "type": "invoice.issued",
        "data": {
            "invoice_id": "inv_dashboard_late",
            "customer_id": LATE_CUSTOMER,
            "subscription_id": "sub_dashboard_late",
            "issue_date": "2026-06-01",
            "currency": "DKK",
            "number": "INV_DASHBOARD_LATE",
            "lines": [
                {
                    "product_id": "plan_49900",
                    "quantity": "3",
                    "unit_amount": 49900,
                    "vat_rate": "0.25",
                    "period_start": "2026-06-01",
                    "period_end": "2026-07-01",
                }
            ],
        },
    },
]

pytestmark = pytest.mark.timeout(300)


def missing_browser() -> str | None:
    if sync_playwright is None:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set SUBLEDGER_CHROMIUM)"
    return None


def billy_target(url: str, *, refuse_mobilepay: bool) -> str:
    """subledger.toml for the sandbox; MobilePay's bank account 5820 mapped, when asked, to
    the receivable 5600, which takes no payments: those payments fail with a 422."""
    mapping = '\naccounts = { "5820" = "5600" }' if refuse_mobilepay else ""
    return (
        f'[targets.billy]\nurl = "{url}/v2"\ntoken = "{BILLY_TOKEN}"\n'
        f"requests_per_minute = 1000000{mapping}\n"
    )


@dataclass
class Server:
    """`subledger serve` in `directory`, started and restarted on the same port."""

    directory: Path
    database_url: str = "sqlite:///subledger.db"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "SUBLEDGER_API_KEYS": KEYS,
            "SUBLEDGER_DATABASE_URL": self.database_url,
        }
        with (self.directory / "serve.log").open("ab") as log:
            self.process = subprocess.Popen(
                [SUBLEDGER, "serve", "--port", str(self.port)],
                cwd=self.directory,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(f"{self.url}/health")
        except AssertionError:
            raise AssertionError((self.directory / "serve.log").read_text()[-3000:]) from None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None

    def get(self, path: str, key: str = ADMIN_KEY, **params: Any) -> Any:
        answer = httpx.get(
            f"{self.url}{path}",
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


@dataclass
class Business:
    server: Server
    billy_url: str
    #: An instant after the demo was recorded and before the late events were.
    known_at: str


def sync_counts(server: Server) -> dict[tuple[str, str], int]:
    """(target, status) -> messages, by paging through the API."""
    counts: Counter[tuple[str, str]] = Counter()
    for status in ("pending", "sending", "sent", "failed"):
        after = None
        while True:
            page = server.get("/v1/sync/messages", status=status, limit=1000, after=after)
            counts.update((m["target"], status) for m in page["messages"])
            after = page["next"]
            if not after:
                break
    return dict(counts)


def settle(server: Server) -> None:
    """Until the sync worker has done what it can: nothing sending, the counts unchanged."""
    last: dict[tuple[str, str], int] = {}
    steady = 0
    deadline = time.monotonic() + 60
    while steady < 3 and time.monotonic() < deadline:
        counts = sync_counts(server)
        sending = sum(n for (_, status), n in counts.items() if status == "sending")
        steady = steady + 1 if counts == last and not sending else 0
        last = counts
        time.sleep(0.3)
    assert steady >= 3, f"the sync worker never settled: {last}"


@pytest.fixture(scope="module")
def business(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Business]:
    directory = tmp_path_factory.mktemp("dashboard")
    env = {k: v for k, v in os.environ.items() if k != "SUBLEDGER_DATABASE_URL"}
    demo = subprocess.run(
        [SUBLEDGER, "demo", *DEMO], cwd=directory, env=env, capture_output=True, text=True
    )
    assert demo.returncode == 0, demo.stderr[-3000:]

    billy_port = free_port()
    sandbox = ["sandbox", "billy", "--port", str(billy_port), "--token", BILLY_TOKEN]
    billy = subprocess.Popen(
        [SUBLEDGER, *sandbox, "--rate-limit", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Server(directory)
    try:
        billy_url = f"http://127.0.0.1:{billy_port}"
        wait_for(f"{billy_url}/_sandbox/summary")
        plans = {f"plan_{tier}" for tiers in PRICES.values() for tier in tiers}
        billy_products(f"{billy_url}/v2", BILLY_TOKEN, plans)
        (directory / "subledger.toml").write_text(billy_target(billy_url, refuse_mobilepay=True))
        server.start()

        # A whole second after the demo was recorded, and before the late events are.
        known_at = datetime.fromtimestamp(math.ceil(time.time()) + 1, UTC)
        time.sleep(max(0.0, known_at.timestamp() - time.time()) + 0.05)
        appended = httpx.post(
            f"{server.url}/v1/events",
            json={"events": LATE_EVENTS},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=30,
        )
        assert appended.status_code == 201, appended.text
        settle(server)
        yield Business(server, billy_url, known_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    finally:
        server.stop()
        billy.terminate()
        billy.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = missing_browser()
    if reason:
        if os.environ.get("SUBLEDGER_REQUIRE_POSTGRES"):
            pytest.fail(f"CI drives the dashboard in Chromium: {reason}")
        pytest.skip(reason)
    assert sync_playwright is not None
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


def discovery_probe(status: int, url: str) -> bool:
    """The page's one expected refusal: asking without a currency, to learn the currencies."""
    path, _, query = url.partition("?")
    return (
        status == 422
        and path.endswith(("/v1/metrics/mrr", "/v1/revenue/summary"))
        and "currency=" not in query
    )


@dataclass
class Dashboard:
    """A browser tab on the dashboard, watching what goes wrong in it."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)

    def watch(self) -> None:
        def console(message: Any) -> None:
            if message.type == "error":
                self.errors.append(message.text)

        def response(answer: Any) -> None:
            if answer.status >= 400:
                self.refused.append((answer.status, answer.url))

        def request(asked: Any) -> None:
            if not asked.url.startswith((self.base, "data:")):
                self.elsewhere.append(asked.url)

        self.page.on("console", console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        self.page.on("response", response)
        self.page.on("request", request)

    def open(self, key: str | None = ADMIN_KEY, route: str = "#/mrr") -> None:
        self.page.goto(f"{self.base}/{route}")
        if key is not None:
            self.page.fill("#api-key", key)
            self.page.click("#key-use")
        expect(self.page.locator("main .loading")).to_have_count(0)

    def go(self, route: str) -> None:
        self.page.goto(f"{self.base}/{route}")

    def tab(self, page: str, heading: str) -> None:
        """Follows the nav bar to `page`, once it shows (its forms replace the last page's)."""
        self.page.click(f"nav a[data-page={page}]")
        expect(self.page.locator("main h1")).to_have_text(heading)

    def figure(self, name: str) -> Any:
        return self.page.locator(f"[data-figure={name}] .figure-value")

    def cell(self, table: str, row: str, name: str) -> Any:
        return self.page.locator(f"#{table} tbody tr[{row}] td[data-field={name}]")

    def total(self, table: str, name: str) -> Any:
        return self.page.locator(f"#{table} tfoot td[data-field={name}]")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def assert_clean(self, expected: Callable[[int, str], bool] = discovery_probe) -> None:
        """No script error, nothing fetched from elsewhere, and every refused request one
        that the view meant to make (each shows in Chromium's console as a failed load)."""
        unexpected = [(status, url) for status, url in self.refused if not expected(status, url)]
        assert unexpected == []
        assert self.elsewhere == []
        loads = [e for e in self.errors if e.startswith("Failed to load resource")]
        assert [e for e in self.errors if e not in loads] == []
        assert len(loads) == len(self.refused)


@pytest.fixture
def dashboard(browser: Browser, business: Business) -> Iterator[Dashboard]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id=ZONE)
    board = Dashboard(context.new_page(), business.server.url)
    board.watch()
    try:
        yield board
    finally:
        context.close()


def shown(minor: int) -> str:
    """An amount of minor units as the pages show it: 123456 -> "1,234.56"."""
    whole, cents = divmod(abs(minor), 100)
    return f"{'-' if minor < 0 else ''}{whole:,}.{cents:02d}"


def local_input(instant: str) -> str:
    """An instant as a reader in ZONE types it into the "known at" field."""
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(ZoneInfo(ZONE))
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


MOVEMENTS = ("new", "expansion", "reactivation", "contraction", "churn")


def test_the_dashboard_needs_no_key_and_stays_out_of_the_api_document(
    business: Business,
) -> None:
    base = business.server.url
    page = httpx.get(f"{base}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for name in ("app.js", "api.js", "charts.js", "pages/mrr.js", "dashboard.css", "icon.svg"):
        assert httpx.get(f"{base}/dashboard/{name}").status_code == 200, name
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not [path for path in paths if path.startswith("/dashboard")]
    assert "/v1/metrics/mrr" in paths


def test_the_mrr_page_shows_the_apis_mrr_arr_and_movements_by_month(
    business: Business, dashboard: Dashboard
) -> None:
    dashboard.open()
    dashboard.go(f"#/mrr?from={FIRST}&to={LAST}&currency=DKK")
    answer = business.server.get("/v1/metrics/mrr", **{"from": FIRST, "to": LAST}, currency="DKK")
    last = answer["months"][-1]
    expect(dashboard.figure("mrr")).to_have_text(f"{shown(last['mrr'])} DKK")
    expect(dashboard.figure("arr")).to_have_text(f"{shown(last['arr'])} DKK")
    expect(dashboard.figure("customers")).to_have_text(f"{last['customers']:,}")
    for month in answer["months"]:
        row = f"data-month='{month['month']}'"
        expect(dashboard.cell("mrr-table", row, "mrr")).to_have_text(shown(month["mrr"]))
        expect(dashboard.cell("mrr-table", row, "arr")).to_have_text(shown(month["arr"]))
        for kind in MOVEMENTS:
            moved = month["movements"][kind]
            expect(dashboard.cell("mrr-table", row, kind)).to_have_text(shown(moved))
    for kind in MOVEMENTS:
        total = sum(month["movements"][kind] for month in answer["months"])
        expect(dashboard.total("mrr-table", kind)).to_have_text(shown(total))
    expect(dashboard.page.locator("#movements-chart svg g.band")).to_have_count(12)
    expect(dashboard.page.locator("#mrr-chart svg circle.dot")).to_have_count(12)
    dashboard.shot("mrr")

    dashboard.page.select_option("#currency", "EUR")
    euros = business.server.get("/v1/metrics/mrr", **{"from": FIRST, "to": LAST}, currency="EUR")
    expect(dashboard.figure("mrr")).to_have_text(f"{shown(euros['months'][-1]['mrr'])} EUR")
    dashboard.assert_clean()


def test_the_mrr_page_shows_the_last_24_months_by_default(
    business: Business, dashboard: Dashboard
) -> None:
    dashboard.open()
    rows = dashboard.page.locator("#mrr-table tbody tr")
    expect(rows).to_have_count(24)
    this_month = datetime.now(ZoneInfo(ZONE)).strftime("%Y-%m")
    expect(rows.last).to_have_attribute("data-month", this_month)
    dashboard.assert_clean()


def test_known_at_shows_every_page_as_the_ledger_stood_then(
    business: Business, dashboard: Dashboard
) -> None:
    server, then = business.server, business.known_at
    span = {"from": FIRST, "to": LAST, "currency": "DKK"}
    now_mrr = server.get("/v1/metrics/mrr", **span)["months"][-1]["mrr"]
    then_mrr = server.get("/v1/metrics/mrr", **span, known_at=then)["months"][-1]["mrr"]
    assert then_mrr != now_mrr, "the late events moved June's MRR"

    dashboard.open()
    dashboard.go(f"#/mrr?from={FIRST}&to={LAST}&currency=DKK")
    expect(dashboard.figure("mrr")).to_have_text(f"{shown(now_mrr)} DKK")
    dashboard.page.fill("#known-at", local_input(then))
    dashboard.page.click("#known-at-apply")
    expect(dashboard.page.locator("#as-of")).to_contain_text(then)
    expect(dashboard.figure("mrr")).to_have_text(f"{shown(then_mrr)} DKK")
    dashboard.shot("mrr-known-at")

    dashboard.tab("revenue", "Revenue recognition")
    dashboard.page.fill("#range input[name=from]", FIRST)
    dashboard.page.fill("#range input[name=to]", LAST)
    dashboard.page.click("#range button[type=submit]")
    summary = server.get("/v1/revenue/summary", **span, known_at=then)["months"]
    expect(dashboard.figure("deferred")).to_have_text(f"{shown(summary[-1]['deferred_end'])} DKK")
    expect(dashboard.cell("revenue-summary", f"data-month='{LAST}'", "billed")).to_have_text(
        shown(summary[-1]["billed"])
    )
    assert (
        summary[-1]["billed"] != server.get("/v1/revenue/summary", **span)["months"][-1]["billed"]
    )

    dashboard.tab("trial-balance", "Trial balance")
    dashboard.page.fill("#as-of-form input[name=as_of]", "2026-06-30")
    dashboard.page.click("#as-of-form button[type=submit]")
    trial = server.get(
        "/v1/ledger/trial-balance", as_of="2026-06-30", currency="DKK", known_at=then
    )
    expect(dashboard.total("trial-balance", "total_debit")).to_have_text(
        shown(trial["total_debit"])
    )
    expect(dashboard.figure("total_credit")).to_have_text(f"{shown(trial['total_credit'])} DKK")
    now_trial = server.get("/v1/ledger/trial-balance", as_of="2026-06-30", currency="DKK")
    assert trial["total_debit"] != now_trial["total_debit"], "the late invoice was booked"

    dashboard.page.click("#as-of a")
    expect(dashboard.page.locator("#as-of")).to_be_hidden()
    expect(dashboard.total("trial-balance", "total_debit")).to_have_text(
        shown(now_trial["total_debit"])
    )
    dashboard.assert_clean()


def test_the_customer_drill_down_shows_each_months_movement_and_the_events_behind_it(
    business: Business, dashboard: Dashboard
) -> None:
    server = business.server
    dashboard.open()
    dashboard.tab("customer", "Customer drill-down")
    dashboard.page.fill("#customer-form input[name=id]", LATE_CUSTOMER)
    dashboard.page.fill("#customer-form input[name=from]", FIRST)
    dashboard.page.fill("#customer-form input[name=to]", LAST)
    dashboard.page.click("#customer-form button[type=submit]")
    answer = server.get(f"/v1/customers/{LATE_CUSTOMER}/mrr", **{"from": FIRST, "to": LAST})
    june = answer["months"][-1]
    assert june["movements"]["new"] == 3 * 49900 and june["event_ids"] == ["evt_dashboard_late_2"]
    row = f"data-month='{LAST}'"
    expect(dashboard.cell("customer-months", row, "mrr")).to_have_text(shown(june["mrr"]))
    expect(dashboard.cell("customer-months", row, "movement")).to_have_text(
        f"New {shown(june['movements']['new'])} DKK"
    )
    expect(dashboard.cell("customer-months", row, "events")).to_have_text("evt_dashboard_late_2")

    events = dashboard.page.locator("#customer-events")
    if "/v1/audit/{kind}/{item_id}" in httpx.get(f"{server.url}/openapi.json").json()["paths"]:
        audit = server.get(f"/v1/audit/customer/{LATE_CUSTOMER}")
        for event in audit["events"]:
            expect(events.locator(f"tr[data-event='{event['id']}']")).to_have_count(1)
        expect(events.locator("tr.cause")).to_have_attribute("data-event", "evt_dashboard_late_2")
    else:
        expect(events).to_contain_text("evt_dashboard_late_2")
    dashboard.shot("customer")

    # A customer of the demo, over its whole history: every month as the API has it.
    dashboard.go(f"#/customer/cus_3_000002?from={FIRST}&to={LAST}")
    history = server.get("/v1/customers/cus_3_000002/mrr", **{"from": FIRST, "to": LAST})
    for month in history["months"]:
        cell = dashboard.cell("customer-months", f"data-month='{month['month']}'", "mrr")
        expect(cell).to_have_text(shown(month["mrr"]))
    dashboard.assert_clean()


def test_the_revenue_page_shows_the_summary_the_deferred_balance_and_the_waterfall(
    business: Business, dashboard: Dashboard
) -> None:
    server = business.server
    span = {"from": FIRST, "to": LAST, "currency": "DKK"}
    dashboard.open()
    dashboard.go(f"#/revenue?from={FIRST}&to={LAST}&currency=DKK")
    summary = server.get("/v1/revenue/summary", **span)["months"]
    expect(dashboard.figure("deferred")).to_have_text(f"{shown(summary[-1]['deferred_end'])} DKK")
    for month in summary:
        row = f"data-month='{month['month']}'"
        for name in ("billed", "credited", "recognized", "deferred_end"):
            expect(dashboard.cell("revenue-summary", row, name)).to_have_text(shown(month[name]))
    expect(dashboard.page.locator("#revenue-chart svg polyline.s-deferred")).to_have_count(1)

    waterfall = server.get("/v1/revenue/waterfall", **span)["rows"]
    table = dashboard.page.locator("#waterfall")
    for row in waterfall:
        line = table.locator(f"tbody tr[data-month='{row['billing_month']}']")
        expect(line.locator("td[data-field=billed]")).to_have_text(shown(row["billed"]))
        for cell in row["months"]:
            expect(line.locator(f"td[data-column='{cell['month']}']")).to_have_text(
                shown(cell["amount"]) if cell["amount"] else ""
            )
    dashboard.shot("revenue")
    dashboard.assert_clean()


def test_the_trial_balance_page_shows_every_account_and_the_apis_totals(
    business: Business, dashboard: Dashboard
) -> None:
    dashboard.open()
    dashboard.go("#/trial-balance?as_of=2026-06-30&currency=DKK")
    answer = business.server.get("/v1/ledger/trial-balance", as_of="2026-06-30", currency="DKK")
    for account in answer["accounts"]:
        row = f"data-account='{account['account']}'"
        for name in ("debit", "credit", "balance"):
            expect(dashboard.cell("trial-balance", row, name)).to_have_text(shown(account[name]))
    expect(dashboard.total("trial-balance", "total_debit")).to_have_text(
        shown(answer["total_debit"])
    )
    expect(dashboard.total("trial-balance", "total_credit")).to_have_text(
        shown(answer["total_credit"])
    )
    expect(dashboard.figure("balanced")).to_have_text("Balanced")
    dashboard.shot("trial-balance")
    dashboard.assert_clean()


def test_refusals_show_in_a_banner_rather_than_a_blank_page(
    business: Business, dashboard: Dashboard
) -> None:
    banner = dashboard.page.locator("#banner")
    dashboard.open(key=None)
    expect(dashboard.page.locator("main")).to_contain_text("Enter an API key")

    dashboard.open(key="not-a-key-of-this-service")
    expect(banner).to_contain_text("the API key is not known")
    expect(dashboard.page.locator("main h1")).to_have_text("MRR and ARR")

    dashboard.open(key=READ_KEY, route="#/customer/nobody")
    expect(banner).to_contain_text("no customer 'nobody'")

    dashboard.go("#/sync")
    failed = business.server.get("/v1/sync/messages", status="failed")["messages"]
    dashboard.page.click(f"button.retry[data-message='{failed[-1]['id']}']")
    expect(banner).to_contain_text("the key 'reader' lacks the scope 'admin'")
    expect(banner).to_contain_text("needs a key with the admin scope")
    still = business.server.get(f"/v1/sync/messages/{failed[-1]['id']}")
    assert still["status"] == "failed"

    def meant(status: int, url: str) -> bool:
        return status in (401, 403, 404) or discovery_probe(status, url)

    dashboard.assert_clean(meant)


def test_the_sync_page_shows_each_target_and_customer_green_or_red_and_syncs_now(
    business: Business, dashboard: Dashboard
) -> None:
    server = business.server
    dashboard.open(route="#/sync")
    failed = server.get("/v1/sync/messages", status="failed")["messages"]
    assert failed, "MobilePay payments were refused"
    stands = server.get("/v1/sync/status")["targets"]["billy"]
    assert stands["state"] == "red" and stands["failed"] == len(failed)
    assert stands["last_error"]["message"] in {m["last_error"] for m in failed}
    billy = "data-target='billy'"
    expect(dashboard.page.locator(f"#sync-health tbody tr[{billy}]")).to_have_attribute(
        "data-state", "red"
    )
    expect(dashboard.cell("sync-health", billy, "mode")).to_contain_text("Continuous")
    expect(dashboard.cell("sync-health", billy, "last_error").locator(".error-text")).to_have_text(
        stands["last_error"]["message"]
    )

    # A customer whose message was refused is red, with the target's words.
    refused = failed[0]
    dashboard.page.fill("#sync-customer-form input[name=customer]", refused["customer_id"])
    dashboard.page.click("#sync-customer-form button[type=submit]")
    lane = dashboard.page.locator(f"#sync-customer-lanes tbody tr[{billy}]")
    expect(lane).to_have_attribute("data-state", "red")
    expect(lane.locator("td[data-field=last_error] .error-text")).to_contain_text("payment")

    dashboard.page.click("#sync-now")
    expect(dashboard.page.locator("#banner")).to_contain_text("Sync started")
    dashboard.shot("sync-health")
    dashboard.assert_clean()


def test_the_sync_page_counts_messages_and_a_retry_takes_a_failed_one_out_of_failed(
    business: Business, dashboard: Dashboard
) -> None:
    server = business.server
    dashboard.open(route="#/sync")
    counts = sync_counts(server)
    assert counts.get(("billy", "failed")), "MobilePay payments were refused"
    for status in ("pending", "sending", "sent", "failed"):
        expect(dashboard.cell("sync-counts", "data-target='billy'", status)).to_have_text(
            f"{counts.get(('billy', status), 0):,}"
        )
    failed = server.get("/v1/sync/messages", status="failed")["messages"]

    # What failures hold, as the API says and as worked out here from the messages: the
    # customers with a failed message, and their messages still waiting.
    stands = server.get("/v1/sync/messages", limit=1)["targets"]["billy"]
    held = {m["customer_id"] for m in failed}
    waiting = server.get("/v1/sync/messages", status="pending", limit=1000)["messages"]
    assert stands["held_lanes"] == len(held) > 0
    assert stands["held_messages"] == sum(1 for m in waiting if m["customer_id"] in held)
    for name in ("held_lanes", "held_messages"):
        expect(dashboard.cell("sync-counts", "data-target='billy'", name)).to_have_text(
            f"{stands[name]:,}"
        )
    expect(dashboard.figure("held_lanes")).to_have_text(f"{stands['held_lanes']:,}")
    oldest = dashboard.cell("sync-counts", "data-target='billy'", "oldest_pending")
    if stands["oldest_pending_at"] is None:
        expect(oldest).to_have_text("–")
    else:
        expect(oldest.locator("span")).to_have_attribute("data-since", stands["oldest_pending_at"])
    rows = dashboard.page.locator("#sync-messages tbody tr")
    expect(rows).to_have_count(len(failed))
    expect(rows.first.locator("td[data-field=detail]")).to_have_text(failed[0]["last_error"])
    dashboard.shot("sync")

    # Fix the mapping, restart the service with it, and retry the first failed message.
    server.stop()
    (server.directory / "subledger.toml").write_text(
        billy_target(business.billy_url, refuse_mobilepay=False)
    )
    server.start()
    dashboard.page.reload()
    chosen = failed[0]["id"]
    dashboard.page.click(f"button.retry[data-message='{chosen}']")
    expect(dashboard.page.locator("#banner")).to_contain_text("queued for another attempt")
    status = dashboard.page.locator(
        f"#sync-messages tr[data-message='{chosen}'] td[data-field=status]"
    )
    expect(status).not_to_have_text("Failed")
    assert server.get(f"/v1/sync/messages/{chosen}")["status"] != "failed"
    deadline = time.monotonic() + 20
    while server.get(f"/v1/sync/messages/{chosen}")["status"] != "sent":
        assert time.monotonic() < deadline, "the retried message was never sent"
        time.sleep(0.2)
    dashboard.assert_clean()


def test_a_service_without_sync_says_so_in_a_friendly_note(
    browser: Browser, tmp_path: Path
) -> None:
    server = Server(tmp_path, database_url="memory://")
    server.start()
    context = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id=ZONE)
    try:
        board = Dashboard(context.new_page(), server.url)
        board.watch()
        board.open(route="#/sync")
        expect(board.page.locator("main .note.friendly")).to_contain_text(
            "Syncing is not set up on this service"
        )
        expect(board.page.locator("#banner")).to_be_hidden()
        board.shot("sync-unavailable")
        board.go("#/mrr")
        expect(board.page.locator("main")).to_contain_text("No subscription has been recorded yet")

        def meant(status: int, url: str) -> bool:
            return status == 409 and "/v1/sync/messages" in url

        board.assert_clean(meant)
    finally:
        context.close()
        server.stop()
