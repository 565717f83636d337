"""Every shell command the docs show is run here, as a reader would type it, against a real
`subledger serve` on a fresh database, and what it prints is compared with what the page shows
(how: tests/e2e/shell.py). Tables the docs keep of the app (its routes, its settings) are
compared with the app's own."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.builders import credit_note, customer, invoice, payment, wire_event
from tests.e2e.shell import run_blocks, shell, shell_blocks
from tests.e2e.test_server import readme_key_setting, serving
from tests.integration.test_mrr_api import EXAMPLE as MRR_EXAMPLE
from tests.integration.test_revenue_api import MONTHLY

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

pytestmark = pytest.mark.timeout(600)


def base_port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


# ---------------------------------------------------------------------------------------------
# The README's tour, and the detailed pages' commands


@pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_readme_tour_gives_the_answers_it_shows(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = "sqlite:///subledger.db"
    if store == "postgresql":
        url = request.getfixturevalue("postgres_url")
    env = {**os.environ, "SUBLEDGER_DATABASE_URL": url, "SUBLEDGER_API_KEYS": readme_key_setting()}
    with serving(tmp_path, env) as base, shell(tmp_path, ports={8000: base_port(base)}) as session:
        run_blocks(session, shell_blocks(ROOT / "README.md", "A tour"))


#: The events behind the answers docs/mrr.md and docs/journal.md show: §8 examples 4 and 3.
SERVED_EXAMPLES = {
    "mrr.md": MRR_EXAMPLE,
    "journal.md": [
        wire_event(customer(), "evt_customer"),
        wire_event(invoice(lines=(MONTHLY,), issue_date=date(2026, 1, 1)), "evt_invoice"),
        wire_event(credit_note(lines=(("1", 1000),), issue_date=date(2026, 3, 5)), "evt_credit"),
        wire_event(payment(amount=250, method="card", received_on=date(2026, 3, 6))),
    ],
}


@pytest.mark.parametrize("page", sorted(SERVED_EXAMPLES))
def test_the_pages_commands_give_the_answers_shown_for_their_example(
    page: str, tmp_path: Path
) -> None:
    env = {**os.environ, "SUBLEDGER_API_KEYS": readme_key_setting()}
    env.pop("SUBLEDGER_DATABASE_URL", None)
    key = readme_key_setting().split(":")[1]
    with serving(tmp_path, env) as base:
        appended = httpx.post(
            f"{base}/v1/events",
            json={"events": SERVED_EXAMPLES[page]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert appended.status_code == 201, appended.text
        with shell(tmp_path, ports={8000: base_port(base)}) as session:
            run_blocks(session, shell_blocks(DOCS / page))


#: Pages whose commands need nothing but a directory of their own (a fresh SQLite database).
ON_THEIR_OWN = ["access.md", "personal-data.md", "projections.md"]


@pytest.mark.parametrize("page", ON_THEIR_OWN)
def test_the_pages_commands_run_as_shown_in_an_empty_directory(page: str, tmp_path: Path) -> None:
    with shell(tmp_path) as session:
        run_blocks(session, shell_blocks(DOCS / page))


# ---------------------------------------------------------------------------------------------
# The pages for newcomers


def test_the_quickstarts_two_commands_are_the_readmes_which_are_run_as_written() -> None:
    """The README's are run by tests/e2e/test_server.py (in a fresh copy) and by CI."""
    quickstart = shell_blocks(DOCS / "quickstart.md", "Two commands")
    readme = shell_blocks(ROOT / "README.md", "Two commands")
    assert [b.command for b in quickstart] == [b.command for b in readme]
    assert len(readme) == 2


def test_the_quickstart_tour_gives_the_answers_it_shows(tmp_path: Path) -> None:
    with shell(tmp_path) as session:
        run_blocks(session, shell_blocks(DOCS / "quickstart.md", "A tour"))


def test_the_concepts_worked_examples_give_the_contracts_numbers(tmp_path: Path) -> None:
    """§8 examples 1 to 4, appended over HTTP and read back, to the øre."""
    with shell(tmp_path) as session:
        run_blocks(session, shell_blocks(DOCS / "concepts.md"))


def test_the_api_page_gives_the_answers_it_shows(tmp_path: Path) -> None:
    with shell(tmp_path) as session:
        run_blocks(session, shell_blocks(DOCS / "api.md"))


SCOPES = ("events:write", "read", "admin")


def routes_of_the_app() -> list[str]:
    """The rows of docs/api.md's table of routes, from the app's OpenAPI document; each route's
    scope found by calling it with a key of each scope (the one not refused with 403)."""
    from fastapi.testclient import TestClient

    from subledger.api.http.app import create_app
    from subledger.api.settings import Settings

    secrets = {scope: f"{scope.replace(':', '-')}-key-0123456789" for scope in SCOPES}
    keys = ",".join(f"k{i}:{secrets[scope]}:{scope}" for i, scope in enumerate(SCOPES))
    rows = []
    with TestClient(create_app(Settings(database_url="memory://", api_keys=keys))) as client:
        for path, operations in client.get("/openapi.json").json()["paths"].items():
            for method, operation in operations.items():
                scope = "none"
                if operation.get("security"):
                    url = re.sub(r"\{[^}]+\}", "x", path)
                    allowed = [
                        candidate
                        for candidate in SCOPES
                        if client.request(
                            method,
                            url,
                            json={},
                            headers={"Authorization": f"Bearer {secrets[candidate]}"},
                        ).status_code
                        not in (401, 403)
                    ]
                    assert len(allowed) == 1, f"{method} {path}: {allowed}"
                    scope = f"`{allowed[0]}`"
                rows.append(f"| `{method.upper()}` | `{path}` | {scope} | {operation['summary']} |")
    return rows


def test_the_api_pages_table_of_routes_is_the_apps() -> None:
    text = (DOCS / "api.md").read_text()
    table = text.split("<!-- routes -->\n", 1)[1].split("<!-- /routes -->", 1)[0]
    expected = "\n".join(
        ["| method | path | scope | what |", "|---|---|---|---|", *routes_of_the_app()]
    )
    assert table.strip() == expected, f"docs/api.md's routes should read:\n{expected}"


@pytest.mark.slow
@pytest.mark.postgres
def test_operating_on_postgresql_runs_as_the_page_shows(
    postgres_database_url: str, tmp_path: Path
) -> None:
    """Separate API and worker processes, health, a backup restored, an upgrade's rebuild."""
    documented = "postgresql://postgres@127.0.0.1:5432/subledger"
    with shell(tmp_path, replace={documented: postgres_database_url}) as session:
        run_blocks(session, shell_blocks(DOCS / "operating.md"))


@pytest.mark.slow
def test_the_accounting_setup_syncs_to_both_sandboxes_as_the_page_shows(tmp_path: Path) -> None:
    with shell(tmp_path) as session:
        run_blocks(session, shell_blocks(DOCS / "accounting.md"))


@pytest.mark.slow
def test_every_setting_of_a_target_runs_against_the_sandboxes_as_the_sync_page_shows(
    tmp_path: Path,
) -> None:
    """docs/sync.md: each setting of a target's table, delivered, polled, refused, resent."""
    with shell(tmp_path) as session:
        run_blocks(session, shell_blocks(DOCS / "sync.md"))


# ---------------------------------------------------------------------------------------------
# Every command run


#: Pages whose every command is run above.
RUN_HERE = {"quickstart.md", "concepts.md", "api.md", "operating.md", "accounting.md", "sync.md"}
RUN_HERE |= set(SERVED_EXAMPLES) | set(ON_THEIR_OWN)


def test_every_command_the_docs_show_is_run_by_a_test() -> None:
    """A page with ```sh blocks is run here, or read by a test of its own (the README's by
    tests/e2e/test_server.py and here; docs/benchmarks.md's scripts by test_benchmarks.py)."""
    tests = [
        path.read_text()
        for path in (ROOT / "tests").rglob("test_*.py")
        if path.name != Path(__file__).name
    ]
    unrun = [
        page.name
        for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
        if shell_blocks(page)
        and page.name not in RUN_HERE
        and not any(page.name in text for text in tests)
    ]
    assert unrun == [], "pages showing commands that no test runs"


def test_every_link_between_the_pages_leads_to_a_file() -> None:
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    broken = [
        f"{page.name}: {target}"
        for page in pages
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
        if not target.startswith(("http://", "https://")) and not (page.parent / target).exists()
    ]
    assert broken == []


# ---------------------------------------------------------------------------------------------
# What docs/operating.md says of the configuration, and docker-compose.yml


def documented_settings() -> dict[str, str]:
    """docs/operating.md's configuration table: each variable and its default, as written."""
    text = (DOCS / "operating.md").read_text()
    table = text.split("<!-- settings -->\n", 1)[1].split("<!-- /settings -->", 1)[0]
    rows = [line.split(" | ") for line in table.strip().splitlines()[2:]]
    return {row[0].strip("|` "): row[1].strip() for row in rows}


def written(default: Any) -> str:
    if hasattr(default, "get_secret_value"):
        default = default.get_secret_value()
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`" if str(default) else "(none)"


def test_the_configuration_table_names_every_setting_with_its_default() -> None:
    from subledger.api.settings import Settings

    documented = documented_settings()
    settings = {f"SUBLEDGER_{name.upper()}": field for name, field in Settings.model_fields.items()}
    assert {name: documented.get(name) for name in settings} == {
        name: written(field.default) for name, field in settings.items()
    }
    source = "\n".join(path.read_text() for path in (ROOT / "api").rglob("*.py"))
    for name in set(documented) - set(settings):
        parts = [part.strip("_") for part in name.split("<NAME>")]
        assert all(part in source for part in parts), f"{name} is read nowhere"


def test_the_compose_file_runs_a_command_the_cli_takes_with_documented_settings() -> None:
    import click

    from subledger.api.cli.main import main

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["subledger"]
    assert set(service["environment"]) <= set(documented_settings())
    command = orjson.loads(
        re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M).group(1)  # type: ignore[union-attr]
    )
    assert command[0] == "subledger"
    subcommand = main.get_command(click.Context(main), command[1])
    assert subcommand is not None
    subcommand.make_context(command[1], command[2:])  # refuses an option it does not take
    assert "/health" in " ".join(service["healthcheck"]["test"])


# ---------------------------------------------------------------------------------------------
# The repository stands alone


#: Files outside the repository that nothing in it may point to.
OUTSIDE = ("shared/", "CONTRACT.md", "accounting-apis.md", "eventsourcing-notes.md")


def test_the_code_and_docs_name_no_file_outside_the_repository_and_every_page_they_name() -> None:
    """The rules are docs/specification.md, Billy's, Dinero's and the library's facts
    docs/reference/: no docstring or page points outside the repository for them, and every
    `docs/<page>.md` a docstring or page names (and every link of a page in a folder of docs/)
    leads to a file."""
    pages = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    code = [
        path
        for folder in ("domain", "projections", "adapters", "api")
        for path in sorted((ROOT / folder).rglob("*.py"))
    ]
    outside = [
        f"{path.relative_to(ROOT)}:{number}: {name}"
        for path in [*code, *pages]
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for name in OUTSIDE
        if name in line
    ]
    assert outside == [], "pointing outside the repository"
    missing = sorted(
        f"{path.relative_to(ROOT)}: {named}"
        for path in [*code, *pages]
        for named in re.findall(r"docs/[\w./-]*?\w\.md", path.read_text())
        if not (ROOT / named).is_file()
    )
    missing += [
        f"{page.relative_to(ROOT)}: {target}"
        for page in pages
        if page.parent != DOCS and page.parent != ROOT
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
        if not target.startswith(("http://", "https://")) and not (page.parent / target).exists()
    ]
    assert missing == [], "naming pages that are not there"
