"""API keys from SUBLEDGER_API_KEYS: parsing, scopes, and never echoing a secret."""

from __future__ import annotations

import pytest

from api.keys import KeyConfigurationError, KeyRing, parse_keys


def test_scopes_are_everything_after_the_second_colon() -> None:
    keys = parse_keys(
        "billing:s3cret-and-long-enough:events:write, ops:another-long-secret:read+admin"
    )
    assert [(key.name, sorted(key.scopes)) for key in keys] == [
        ("billing", ["events:write"]),
        ("ops", ["admin", "read"]),
    ]


def test_a_presented_secret_identifies_its_key_and_nothing_else_does() -> None:
    ring = KeyRing(parse_keys("a:first-secret-0123456:read,b:second-secret-012345:admin"))
    identified = ring.identify("second-secret-012345")
    assert identified is not None
    assert identified.name == "b"
    assert ring.identify("second-secret-01234") is None
    assert ring.identify("") is None


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("nocolons", "name:secret:scope"),
        ("a:short:read", "at least 16 characters"),
        ("a:changeme:read", "at least 16 characters"),
        ("a:long-enough-secret-1:write", "unknown scope"),
        ("a:long-enough-secret-1:read,a:long-enough-secret-2:read", "twice"),
        ("bad name:long-enough-secret-1:read", "invalid name"),
    ],
)
def test_a_malformed_key_setting_is_refused_without_echoing_the_secret(
    text: str, complaint: str
) -> None:
    with pytest.raises(KeyConfigurationError) as raised:
        parse_keys(text)
    assert complaint in str(raised.value)
    for secret in ("short", "changeme", "long-enough-secret"):
        assert secret not in str(raised.value)


def test_no_setting_means_no_keys() -> None:
    assert parse_keys("") == []
    assert parse_keys(" , ") == []
