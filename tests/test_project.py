"""The project keeps its own promises: the README's two commands, CI running the test one,
layers pointing inward, and a docker-compose file that would run (it cannot run here)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {
    # package: (packages it must not import, libraries it must not import)
    "domain": (
        {"projections", "adapters", "api"},
        {"psycopg", "httpx", "fastapi", "sqlite3", "requests", "orjson", "pydantic"},
    ),
    "projections": (
        {"adapters", "api"},
        {"psycopg", "httpx", "fastapi", "sqlite3", "requests", "pydantic"},
    ),
    "adapters": ({"api"}, set()),
}


def readme_commands() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.DOTALL)


def imported_modules(path: Path) -> set[str]:
    """The top-level modules `path` imports, ours named by their layer (`subledger.api` → `api`)."""
    tree = ast.parse(path.read_text())
    modules: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
    return {
        module.split(".")[1] if module.startswith("subledger.") else module.split(".")[0]
        for module in modules
    }


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    return names | {
        n.module.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module and n.level == 0
    }


def our_modules() -> dict[str, Path]:
    """Every module of the package, by its dotted name (`subledger.api.cli.main`); a package by
    its own name, for its `__init__.py`."""
    modules = {}
    for folder in ("domain", "projections", "adapters", "api"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("subledger", *parts))
            modules[name.removesuffix(".__init__")] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Which of our modules each of our modules imports, anywhere in it (an import inside a
    function closes a circle as surely as one at the top). `from package import name` counts as
    importing the module `package.name` where there is one, else the package."""
    modules = our_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    stem = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{stem}.{base}" if base else stem
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    found.add(submodule if submodule in modules else base)
        graph[name] = {module for module in found if module in modules and module != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The circles of `graph`: for each group of modules that import one another (a strongly
    connected component of more than one), one path round it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    cycles = []
    for group in groups:
        start = min(group)
        path, seen = [start], {start}
        while True:
            step = min(m for m in graph[path[-1]] if m in group)
            path.append(step)
            if step in seen:
                break
            seen.add(step)
        cycles.append(path[path.index(path[-1]) :])
    return cycles


def test_a_cycle_in_an_import_graph_is_found() -> None:
    """The check below would see a circle (this one was the command line's)."""
    graph = {
        "cli.main": {"cli.sync", "cli.common"},
        "cli.sync": {"cli.main"},
        "cli.common": set(),
    }
    assert import_cycles(graph) == [["cli.main", "cli.sync", "cli.main"]]
    assert import_cycles({**graph, "cli.sync": {"cli.common"}}) == []


def test_no_module_imports_itself_round_a_circle() -> None:
    """Modules that import one another load only in some orders (and, imported inside
    functions to dodge that, hide what depends on what): none of ours do."""
    assert import_cycles(import_graph()) == []


def test_the_http_room_does_not_reach_the_command_line_or_the_sandboxes() -> None:
    """The app, and everything it imports, loads without the command line (`api/cli/`) and
    the accounting systems' sandboxes (`adapters/sandbox/`): a server needs neither."""
    graph = import_graph()
    forbidden = ("subledger.api.cli", "subledger.adapters.sandbox")
    problems = []
    for start in sorted(m for m in graph if m.startswith("subledger.api.http")):
        came_from = {start: start}
        queue = [start]
        while queue:
            module = queue.pop(0)
            for imported in sorted(graph[module]):
                if imported in came_from:
                    continue
                came_from[imported] = module
                if imported.startswith(forbidden):
                    chain = [imported]
                    while chain[-1] != start:
                        chain.append(came_from[chain[-1]])
                    problems.append(" <- ".join(chain))
                else:
                    queue.append(imported)
    assert problems == []


def test_the_backend_is_told_apart_in_one_place() -> None:
    """Which row store, key store, delivery database and follower go with a store is the
    bundle's of adapters/backends.py: no other module outside the stores themselves names the
    stores' recorder classes (to tell the backend from a ledger's)."""
    recorders = {"PostgresLedgerRecorder", "SQLiteLedgerRecorder", "MemoryLedgerRecorder"}
    problems = []
    for name, path in our_modules().items():
        if name.startswith("subledger.adapters.store") or name == "subledger.adapters.backends":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and recorders & {a.name for a in node.names}:
                problems.append(f"{path.relative_to(ROOT)} imports {node.module}")
    assert problems == []


def test_the_readme_has_a_run_command_and_a_test_command() -> None:
    run, test = readme_commands()
    assert "pip install -e ." in run
    assert run.rstrip().endswith("subledger serve")
    assert "SUBLEDGER_API_KEYS=" in run
    assert "pip install -r requirements/dev.lock && .venv/bin/pip install -e . --no-deps" in test
    assert test.rstrip().endswith("pytest")


def test_ci_runs_the_readmes_test_command_against_postgresql() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    _, test = readme_commands()
    assert test in ci.splitlines()
    assert "SUBLEDGER_REQUIRE_POSTGRES=1" in ci
    assert "SUBLEDGER_TEST_DATABASE_URL" in ci
    assert (ROOT / ".ci" / "run").stat().st_mode & 0o111, ".ci/run is executable"


def test_layers_point_inward() -> None:
    problems = []
    for package, (outer, io_libraries) in LAYERS.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            wrong = imported_modules(path) & (outer | io_libraries)
            if wrong:
                problems.append(f"{path.relative_to(ROOT)} imports {sorted(wrong)}")
    assert problems == []


def test_the_console_script_is_subledger() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"subledger": "subledger.api.cli.main:main"}


def test_the_code_imports_its_layers_under_the_one_package_name() -> None:
    """Installed, the layers exist only as `subledger.*`: an import of `domain` or `api` would
    find nothing there (or someone else's package of that name)."""
    layers = {"domain", "projections", "adapters", "api"}
    problems = [
        f"{path.relative_to(ROOT)} imports {sorted(wrong)}"
        for folder in (*layers, "tests", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (wrong := top_level_imports(path) & layers)
    ]
    assert problems == []


def test_docker_compose_runs_the_service_beside_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "subledger"}
    postgres, service = services["postgres"], services["subledger"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert service["build"] == "."
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = service["environment"]["SUBLEDGER_DATABASE_URL"]
    assert url.startswith("postgresql://") and "@postgres:5432/" in url
    assert "SUBLEDGER_API_KEYS" in service["environment"]
    assert service["ports"] == ["8000:8000"]
    assert "postgres-data" in compose["volumes"]


def test_the_image_holds_every_package_and_serves_on_all_interfaces() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("domain", "projections", "adapters", "api"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert '"serve", "--host", "0.0.0.0", "--port", "8000"' in dockerfile


def run_a_postgres_test(**env: str) -> subprocess.CompletedProcess[str]:
    """Run one PostgreSQL test in a fresh pytest, with PostgreSQL out of reach."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SUBLEDGER_")}
    environment |= {"SUBLEDGER_TEST_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    environment |= env
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "-rs",
            "tests/integration/test_ingestion.py::test_an_empty_batch_is_refused[postgresql]",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_postgresql_its_tests_are_skipped_with_the_reason() -> None:
    result = run_a_postgres_test()
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "no PostgreSQL: SUBLEDGER_TEST_DATABASE_URL does not answer" in result.stdout


def test_when_postgresql_is_required_its_absence_fails_the_tests() -> None:
    result = run_a_postgres_test(SUBLEDGER_REQUIRE_POSTGRES="1")
    assert result.returncode != 0
    assert "PostgreSQL is required here" in result.stdout


def test_no_module_of_the_product_is_over_six_hundred_lines() -> None:
    """A file a newcomer cannot read in one sitting is split by what it holds."""
    too_long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for folder in ("domain", "projections", "adapters", "api")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > 600
    ]
    assert too_long == []
