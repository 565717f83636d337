"""`subledger export journal` and `subledger projections check`, run as a bookkeeper would."""

from __future__ import annotations

import csv
import io
import sqlite3
from decimal import Decimal
from pathlib import Path

import orjson

from subledger.adapters.store import store_env
from subledger.api.demo.generator import Business
from subledger.api.http.ingest import parse_submissions
from subledger.domain.ledger import Ledger
from tests.e2e.test_projection_commands import run


def append_business(url: str) -> None:
    ledger = Ledger(store_env(url))
    events = list(Business(customers=30, months=12, seed=4, eur_percent=30).events())
    for start in range(0, len(events), 1000):
        ledger.append(parse_submissions(orjson.dumps({"events": events[start : start + 1000]})))
    ledger.close()


def test_the_journal_exports_as_balanced_csv_with_accounts(
    database_url: str, tmp_path: Path
) -> None:
    append_business(database_url)
    out = tmp_path / "journal.csv"
    done = run(
        database_url, tmp_path, "export", "journal", "--from", "2023-01-01", "--to",
        "2023-12-31", "--output", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "exported" in done.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows, "a year of a business has entries"
    assert list(rows[0]) == [
        "entry_id", "date", "original_date", "kind", "account", "role", "detail", "debit",
        "credit", "currency", "customer_id", "source_event_ids",
    ]  # fmt: skip
    sums: dict[str, Decimal] = {}
    for row in rows:
        assert "2023-01-01" <= row["date"] <= "2023-12-31"
        assert row["account"].isdigit()
        amount = Decimal(row["debit"] or "0") - Decimal(row["credit"] or "0")
        sums[row["entry_id"]] = sums.get(row["entry_id"], Decimal(0)) + amount
    assert set(sums.values()) == {Decimal(0)}, "every entry balances"
    assert {row["currency"] for row in rows} == {"DKK", "EUR"}
    assert all("." in (row["debit"] or row["credit"]) for row in rows), "in major units"

    euros = run(
        database_url, tmp_path, "export", "journal", "--from", "2023-01-01", "--to",
        "2023-12-31", "--currency", "EUR",
    )  # fmt: skip
    assert euros.returncode == 0, euros.stderr
    eur_rows = list(csv.DictReader(io.StringIO(euros.stdout)))
    assert eur_rows == [row for row in rows if row["currency"] == "EUR"]


def test_export_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'subledger.db'}"
    backwards = run(
        url, tmp_path, "export", "journal", "--from", "2026-02-01", "--to", "2026-01-01"
    )
    assert backwards.returncode != 0
    assert "is after --to" in backwards.stderr
    (tmp_path / "subledger.toml").write_text('[accounts]\nrecievable = "5600"\n')
    charted = run(url, tmp_path, "export", "journal", "--from", "2026-01-01", "--to", "2026-01-31")
    assert charted.returncode != 0
    assert "no role recievable" in charted.stderr


def test_the_journal_check_passes_on_true_books_and_fails_on_tampered_ones(
    database_url: str, tmp_path: Path
) -> None:
    append_business(database_url)
    checked = run(database_url, tmp_path, "projections", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    results = [line.split()[-1] for line in checked.stdout.splitlines()[1:] if line.strip()]
    assert "FAILED" not in checked.stdout
    assert len(results) == 4
    for check in ("entries balance", "trial balance balances every day", "receivables match"):
        assert check in checked.stdout
    if not database_url.startswith("sqlite"):
        return
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
        connection.execute(
            "UPDATE subledger_journal_totals SET debit = debit + 1"
            " WHERE (currency, date, role, detail) = (SELECT currency, date, role, detail"
            " FROM subledger_journal_totals WHERE debit > 0 LIMIT 1)"
        )
    tampered = run(database_url, tmp_path, "projections", "check")
    assert tampered.returncode == 1
    assert "FAILED" in tampered.stdout
