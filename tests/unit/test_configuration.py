"""subledger.toml parsed once into typed tables (`api.config`): every key known, of its type
and within its bounds, each refusal naming its place in the file; credentials from the
environment (docs/operating.md, "Configuration")."""

from __future__ import annotations

from pathlib import Path

import pytest

from subledger.api.settings import Configuration, ConfigurationError, Settings
from subledger.api.sync import read_notifications, read_targets

BILLY = '[targets.billy]\ntoken = "t"\n'
DINERO = (
    '[targets.dinero]\ntoken = "t"\norganization_id = "1"\nclient_id = "c"\nclient_secret = "s"\n'
)


def configured(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "subledger.toml"
    path.write_text(text, encoding="utf-8")
    return Settings(config=path)


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigurationError) as refused:
        Configuration.read(configured(tmp_path, text))
    return str(refused.value)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # A misspelt key, with its path (the example docs/sync.md gives).
        (BILLY + "requests_per_minte = 60\n", "targets.billy.requests_per_minte: unknown key"),
        # A string where a boolean belongs is not read as true.
        (BILLY + 'book = "false"\n', "targets.billy.book: must be true or false"),
        (BILLY + 'email = "no"\n', "targets.billy.email: must be true or false"),
        (BILLY + "e_invoice = 1\n", "targets.billy.e_invoice: must be true or false"),
        # A budget of 0 requests would divide by zero; a negative one would turn it off.
        (BILLY + "requests_per_minute = 0\n", "targets.billy.requests_per_minute: must be greater"),
        (
            BILLY + "requests_per_minute = -5\n",
            "targets.billy.requests_per_minute: must be greater",
        ),
        (
            BILLY + "requests_per_minute = 1.5\n",
            "targets.billy.requests_per_minute: must be a whole",
        ),
        (
            BILLY + "requests_per_minute = 1000001\n",
            "targets.billy.requests_per_minute: must be less than or equal to 1000000",
        ),
        (
            BILLY + 'requests_per_minute = "60"\n',
            "targets.billy.requests_per_minute: must be a whole",
        ),
        (BILLY + "timeout_seconds = 0\n", "targets.billy.timeout_seconds: must be greater than 0"),
        (BILLY + "timeout_seconds = -1\n", "targets.billy.timeout_seconds: must be greater than 0"),
        (BILLY + "timeout_seconds = 3600\n", "targets.billy.timeout_seconds: must be less than"),
        (BILLY + "poll_seconds = 0\n", "targets.billy.poll_seconds: must be greater than or"),
        (BILLY + 'match = "phone"\n', "targets.billy.match: must be 'customer_number',"),
        (BILLY + 'direction = "pull"\n', "targets.billy.direction: must be 'push' or 'both'"),
        (BILLY + 'url = "api.billysbilling.com"\n', "targets.billy.url: must be an http://"),
        (BILLY + "products = { pro = true }\n", "targets.billy.products.pro: must be a name or"),
        (BILLY + 'accounts = { "5810" = "" }\n', "targets.billy.accounts.5810: must be a name or"),
        (BILLY + 'vat_accounts = { "25" = "7400" }\n', "targets.billy.vat_accounts: unknown key"),
        (BILLY + 'kind = "sap"\n', "targets.billy.kind: must be 'billy' or 'dinero'"),
        (DINERO + "create_products = true\n", "targets.dinero.create_products: unknown key"),
        (DINERO + 'vat_accounts = { "250" = "7400" }\n', "targets.dinero.vat_accounts: keys are"),
        (DINERO + 'token_url = "ftp://x"\n', "targets.dinero.token_url: must be an http://"),
        ("[targets]\nbilly = 3\n", "targets.billy: must be a table"),
        ("[sync]\nworkers = 2\n", "sync: unknown key"),
        ("[notifications]\nsmtp_port = 70000\n", "notifications.smtp_port: must be less than"),
        ('[notifications]\nsmtp_to = ["a@example.com", 7]\n', "notifications.smtp_to"),
        ('[notifications]\nwebhook_url = "example.com"\n', "notifications.webhook_url: must be"),
        ("[notifications]\nsmtp_passwrd = 'x'\n", "notifications.smtp_passwrd: unknown key"),
    ],
)
def test_a_key_that_cannot_be_used_is_refused_with_its_path(
    tmp_path: Path, text: str, said: str
) -> None:
    message = refusal(tmp_path, text)
    assert f"subledger.toml: {said}" in message, message


def test_a_refused_value_is_shown_once(tmp_path: Path) -> None:
    message = refusal(tmp_path, BILLY + 'mode = "scheduled"\nevery = "3 hours"\n')
    assert message.endswith(
        'targets.billy.every: must be a whole number and one of s, m, h, d, as "3h"'
        " (got '3 hours')"
    ), message
    assert message.count("(got") == 1


def test_every_problem_of_a_file_is_told_at_once(tmp_path: Path) -> None:
    message = refusal(
        tmp_path,
        BILLY + "requests_per_minte = 60\nbook = 'yes'\n" + DINERO + "colour = 'red'\n",
    )
    lines = [line.split("subledger.toml: ", 1)[1] for line in message.splitlines()]
    assert sorted(lines) == [
        "targets.billy.book: must be true or false (got 'yes')",
        "targets.billy.requests_per_minte: unknown key",
        "targets.dinero.colour: unknown key",
    ]


def test_a_refused_credential_is_never_shown(tmp_path: Path) -> None:
    message = refusal(tmp_path, "[targets.billy]\ntoken = 12345678\n")
    assert "targets.billy.token" in message and "12345678" not in message
    message = refusal(tmp_path, '[notifications]\nsmtp_password = ["hunter2"]\n')
    assert "notifications.smtp_password" in message and "hunter2" not in message


def test_credentials_from_the_environment_win_over_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configured(tmp_path, BILLY + DINERO + '[notifications]\nsmtp_password = "f"\n')
    monkeypatch.setenv("SUBLEDGER_TARGET_BILLY_TOKEN", "from-the-environment")
    monkeypatch.setenv("SUBLEDGER_TARGET_DINERO_CLIENT_SECRET", "secret-of-the-environment")
    monkeypatch.setenv("SUBLEDGER_SMTP_PASSWORD", "password-of-the-environment")
    billy, dinero = sorted(read_targets(settings), key=lambda target: target.name)
    assert billy.token == "from-the-environment"
    assert (dinero.token, dinero.client_secret) == ("t", "secret-of-the-environment")
    notify = read_notifications(settings)
    assert notify is not None and notify.smtp_password == "password-of-the-environment"


def test_a_target_without_a_token_anywhere_is_refused(tmp_path: Path) -> None:
    settings = configured(tmp_path, "[targets.billy]\nbook = true\n")
    with pytest.raises(ConfigurationError, match=r"targets\.billy\.token: missing"):
        read_targets(settings)


def test_a_valid_file_keeps_every_value_it_gives(tmp_path: Path) -> None:
    settings = configured(
        tmp_path,
        BILLY + "book = false\nrequests_per_minute = 60\ntimeout_seconds = 7\npoll_seconds = 30\n"
        'direction = "both"\nmatch = "email"\nproducts = { pro = 42 }\n'
        'accounts = { "5810" = 5820 }\npayment_terms = { card = 0, default = 14 }\n'
        "kinds.person = { email = true }\n",
    )
    (billy,) = read_targets(settings)
    assert (billy.book, billy.requests_per_minute, billy.timeout_seconds) == (False, 60, 7.0)
    assert (billy.poll_seconds, billy.direction, billy.match) == (30.0, "both", "email")
    assert billy.products == {"pro": "42"} and billy.accounts == {"5810": "5820"}
    assert billy.payment_terms == {"card": 0, "default": 14}
    assert billy.kinds == {"person": {"email": True}}
    assert billy.url == "https://api.billysbilling.com/v2"
