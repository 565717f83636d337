"""A target's `transfer` and `draft_recheck` as subledger.toml gives them (docs/sync.md, "When
an invoice reaches a target"): invoices on issue and a draft looked at every 15 minutes by
default; `on_payment`, and a recheck period in s, m, h or d; anything else refused with its
place."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from subledger.adapters.sync.common import TargetSettings
from subledger.api.settings import Configuration, ConfigurationError, Settings
from subledger.api.sync import read_targets

PATH = Path("subledger.toml")


def target(text: str) -> TargetSettings:
    table = tomllib.loads(f'token = "t"\n{text}')
    configuration = Configuration.parse(PATH, {"targets": {"billy": table}})
    (found,) = read_targets(Settings(), configuration)
    return found


def test_invoices_go_on_issue_and_drafts_are_looked_at_every_quarter_hour_unless_told() -> None:
    found = target("")
    assert (found.transfer, found.draft_recheck_seconds) == ("on_issue", 15 * 60)
    found = target('transfer = "on_payment"\ndraft_recheck = "2h"')
    assert (found.transfer, found.draft_recheck_seconds) == ("on_payment", 2 * 3600)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('transfer = "when_paid"', "targets.billy.transfer: must be 'on_issue' or 'on_payment'"),
        ('draft_recheck = "15 minutes"', "targets.billy.draft_recheck: "),
        ('draft_recheck = "0m"', "targets.billy.draft_recheck: "),
        ("draft_recheck = 15", "targets.billy.draft_recheck: must be a string"),
    ],
)
def test_settings_that_mean_nothing_are_refused_with_their_place(text: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        target(text)
    assert f"subledger.toml: {words}" in str(refused.value)
