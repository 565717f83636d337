"""Installed, the project is one package, `subledger`, and runs as `subledger` and as
`python -m subledger` wherever the user stands, even beside folders of their own named like
ours."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of what the repository ships (setuptools builds in place)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "__main__.py"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("domain", "projections", "adapters", "api"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    built = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(built),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (found,) = built.glob("subledger-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a folder of its own (its dependencies are this venv's)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    return target


@pytest.fixture
def users_folder(tmp_path: Path) -> Path:
    """A folder with packages of the user's own named like our layers, which break if imported."""
    for name in ("api", "domain", "projections", "adapters"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"raise ImportError('the user's own {name}')\n"
        )
    return tmp_path


def test_the_wheel_holds_one_top_level_package_named_subledger(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"subledger"}
    assert "subledger/__main__.py" in names
    assert "subledger/api/http/static/index.html" in names, "the dashboard's files are in the wheel"
    for folder in ("domain", "projections", "adapters", "api"):
        assert any(name.startswith(f"subledger/{folder}/") for name in names)
    assert not any(name.startswith("subledger/tests/") for name in names)


def test_every_package_of_the_repository_is_in_the_wheel(wheel: Path) -> None:
    """A folder of modules left out of pyproject.toml's list would be missing when installed."""
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = [
        path.relative_to(ROOT)
        for folder in ("domain", "projections", "adapters", "api")
        for path in (ROOT / folder).rglob("*.py")
    ]
    assert modules
    assert [m for m in modules if f"subledger/{m.as_posix()}" not in names] == []


def run_installed(installed: Path, where: Path, *command: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(installed), "PYTHONSAFEPATH": ""}
    environment.pop("SUBLEDGER_DATABASE_URL", None)
    return subprocess.run(
        command, cwd=where, env=environment, capture_output=True, text=True, timeout=120
    )


def test_python_dash_m_subledger_runs_beside_the_users_own_api_folder(
    installed: Path, users_folder: Path
) -> None:
    ran = run_installed(installed, users_folder, sys.executable, "-m", "subledger", "--help")
    assert ran.returncode == 0, ran.stderr
    assert "Usage: python -m subledger" in ran.stdout
    where = run_installed(
        installed,
        users_folder,
        sys.executable,
        "-c",
        "import subledger.api.cli.main as cli; print(cli.__file__)",
    )
    assert where.stdout.strip().startswith(str(installed)), where.stderr


def test_the_subledger_command_of_the_wheel_runs(installed: Path, users_folder: Path) -> None:
    ran = run_installed(installed, users_folder, str(installed / "bin" / "subledger"), "--help")
    assert ran.returncode == 0, ran.stderr
    assert "an event-sourced revenue ledger" in ran.stdout
