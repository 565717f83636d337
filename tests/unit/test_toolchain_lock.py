"""The toolchain is locked: every dependency pyproject.toml names, the `dev` extra's included,
has an upper bound, and requirements/dev.lock (what CI and the README's test command install)
pins each of them, with hashes, to a version inside pyproject.toml's range. So a new release of
a linter or a library changes nothing until the lock is refreshed (`requirements/refresh`)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "dev.lock"


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        Requirement(line)
        for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    ]


def pinned(text: str) -> dict[str, Version]:
    """The lock's `name==version` lines, by canonical name (`PyYAML` and `pyyaml` alike)."""
    pins = {}
    for match in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s|$)", text, re.M):
        pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def unbounded(requirements: list[Requirement]) -> list[str]:
    """The requirements without an upper bound (`<`, `<=`, `==` or `~=`)."""
    return [
        str(requirement)
        for requirement in requirements
        if not any(spec.operator in {"<", "<=", "==", "~="} for spec in requirement.specifier)
    ]


def outside_the_lock(requirements: list[Requirement], lock: str) -> list[str]:
    """The requirements the lock does not pin, or pins outside their range."""
    pins = pinned(lock)
    problems = []
    for requirement in requirements:
        version = pins.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name} is not in the lock")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} is outside {requirement.specifier}")
    return problems


def test_a_dependency_without_an_upper_bound_is_found() -> None:
    found = unbounded([Requirement("ruff>=0.6"), Requirement("mypy>=1.11,<2"), Requirement("x==1")])
    assert found == ["ruff>=0.6"]


def test_a_dependency_missing_from_the_lock_or_pinned_outside_its_range_is_found() -> None:
    lock = "PyYAML==6.0.2 \\\n    --hash=sha256:00\nruff==0.18.0 \\\n    --hash=sha256:11\n"
    requirements = [Requirement("pyyaml>=6,<7"), Requirement("ruff<0.18"), Requirement("mypy<3")]
    assert outside_the_lock(requirements, lock) == [
        "ruff==0.18.0 is outside <0.18",
        "mypy is not in the lock",
    ]


def test_every_dependency_of_pyproject_has_an_upper_bound() -> None:
    assert unbounded(declared()) == []


def test_every_dependency_of_pyproject_is_pinned_in_the_lock_inside_its_range() -> None:
    assert outside_the_lock(declared(), LOCK.read_text()) == []


def test_every_pin_of_the_lock_has_a_hash_and_the_lock_says_what_it_is_for() -> None:
    text = LOCK.read_text()
    pins = re.findall(
        r"^\S+==\S+(?: \\\n(?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)?", text, re.M
    )
    assert pins and all("--hash=sha256:" in pin for pin in pins)
    assert "Python 3.11 on Linux x86_64" in text
    assert "--index-url" not in text and "--extra-index-url" not in text, "plain PyPI"
    assert "--find-links" not in text and "/opt/" not in text
