"""The composition root: settings in, a wired ledger and key ring out. Nothing runs at import."""

from __future__ import annotations

from adapters.store import store_env, store_kind
from api.keys import KeyRing, parse_keys
from api.settings import Settings
from domain.ledger import Ledger


def build_ledger(settings: Settings) -> Ledger:
    """The ledger on the store named by `settings.database_url` (tables created if missing)."""
    return Ledger(env=store_env(settings.database_url, settings.store_options()))


def build_keys(settings: Settings) -> KeyRing:
    return KeyRing(parse_keys(settings.api_keys.get_secret_value()))


def describe_store(settings: Settings) -> str:
    return store_kind(settings.database_url)
