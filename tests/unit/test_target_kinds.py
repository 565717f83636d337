"""A target's `kinds` (book, email and e_invoice per kind of customer, else the target's own)
and Billy's `create_products`, as subledger.toml gives them (docs/sync.md)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from subledger.adapters.sync.common import TargetSettings
from subledger.api.settings import Configuration, ConfigurationError, Settings
from subledger.api.sync import read_targets

PATH = Path("subledger.toml")


def target(text: str, name: str = "billy") -> TargetSettings:
    table: dict[str, Any] = tomllib.loads(f'token = "t"\n{text}')
    if name == "dinero":
        table |= {"organization_id": "1", "client_id": "c", "client_secret": "s"}
    (settings,) = read_targets(Settings(), Configuration.parse(PATH, {"targets": {name: table}}))
    return settings


@pytest.mark.parametrize("name", ["billy", "dinero"])
def test_each_kind_has_its_own_settings_and_falls_back_to_the_targets(name: str) -> None:
    settings = target(
        "book = false\nemail = true\n"
        "kinds.person = { email = true, book = true }\n"
        "kinds.company = { email = false }\n"
        "kinds.public = { e_invoice = true }\n",
        name,
    )
    wanted = {
        # kind: (book, email, e_invoice)
        "person": (True, True, False),
        "company": (False, False, False),
        "public": (False, True, True),
        None: (False, True, False),  # a customer without a kind: the target's own
    }
    for kind, (book, email, e_invoice) in wanted.items():
        assert settings.for_kind(kind, "book") is book, kind
        assert settings.for_kind(kind, "email") is email, kind
        assert settings.for_kind(kind, "e_invoice") is e_invoice, kind


def test_without_kinds_every_customer_has_the_targets_settings() -> None:
    settings = target("e_invoice = true")
    assert settings.kinds == {}
    assert [settings.for_kind(k, "e_invoice") for k in ("person", "company", "public")] == [
        True,
        True,
        True,
    ]
    assert settings.for_kind("person", "book") is True and not settings.for_kind("x", "email")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("kinds.robot = { book = true }", "kinds.robot: must be 'person', 'company' or 'public'"),
        ("kinds.person = { match = 'email' }", "kinds.person.match: unknown key"),
        ("kinds.person = { email = 'yes' }", "kinds.person.email: must be true or false"),
        ("kinds.person = true", "kinds.person: must be a table"),
        ("kinds = 1", "kinds: must be a table"),
        ("create_products = 'yes'", "create_products: must be true or false"),
    ],
)
def test_settings_that_mean_nothing_are_refused(text: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        target(text)


def test_create_products_is_billys_alone() -> None:
    assert target("create_products = true").create_products is True
    assert target("").create_products is False
    with pytest.raises(ConfigurationError, match=r"targets\.dinero\.create_products: unknown key"):
        target("create_products = true", "dinero")
