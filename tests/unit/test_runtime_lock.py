"""The image installs requirements/runtime.lock (the Dockerfile): the service's dependencies
alone, each pinned inside pyproject.toml's range and at the version requirements/dev.lock pins,
so that the image runs what CI tests; then the project without resolving anything more."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from tests.unit.test_toolchain_lock import LOCK, outside_the_lock, pinned

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"


def test_the_runtime_lock_pins_every_dependency_of_the_service_inside_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    assert outside_the_lock(requirements, RUNTIME_LOCK.read_text()) == []


def test_the_runtime_lock_pins_the_versions_of_the_dev_lock_and_no_dev_tool() -> None:
    runtime, dev = pinned(RUNTIME_LOCK.read_text()), pinned(LOCK.read_text())
    assert {name: version for name, version in runtime.items() if dev.get(name) != version} == {}
    for tool in ("pytest", "ruff", "mypy"):
        assert tool in dev and tool not in runtime, tool


def test_the_image_installs_the_runtime_lock_before_the_project_without_its_dependencies() -> None:
    steps = [
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("RUN ")
    ]
    locked = "pip install --no-cache-dir --require-hashes -r requirements/runtime.lock"
    assert steps[0] == f"RUN {locked}"
    assert steps[1].startswith("RUN pip install --no-cache-dir --no-deps . ")
