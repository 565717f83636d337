"""A target's `mode` and `every` as subledger.toml gives them (docs/sync.md, "When each
target is sent to"): continuous by default, scheduled with a period in s, m, h or d, manual;
anything else refused with its place."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from subledger.adapters.sync.dispatcher import Schedule
from subledger.api.settings import Configuration, ConfigurationError, Settings
from subledger.api.sync import read_schedules

PATH = Path("subledger.toml")


def schedule(text: str, name: str = "billy") -> Schedule:
    table = tomllib.loads(f'token = "t"\n{text}')
    configuration = Configuration.parse(PATH, {"targets": {name: table}})
    return read_schedules(Settings(), configuration)[name]


def test_a_target_is_continuous_unless_told() -> None:
    assert schedule("") == Schedule("continuous", None)
    assert not schedule("").holds
    assert schedule('mode = "manual"') == Schedule("manual", None)
    assert schedule('mode = "manual"').holds


@pytest.mark.parametrize(
    ("every", "seconds"),
    [("2s", 2), ("90s", 90), ("15m", 900), ("3h", 10_800), ("1d", 86_400), ("7d", 604_800)],
)
def test_a_period_is_a_whole_number_and_a_unit(every: str, seconds: int) -> None:
    found = schedule(f'mode = "scheduled"\nevery = "{every}"')
    assert found == Schedule("scheduled", seconds)
    assert found.holds


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('mode = "scheduled"\nevery = "3 hours"', "targets.billy.every: "),
        ('mode = "scheduled"\nevery = "3w"', "targets.billy.every: "),
        ('mode = "scheduled"\nevery = "h"', "targets.billy.every: "),
        ('mode = "scheduled"\nevery = "0s"', "targets.billy.every: "),
        ('mode = "scheduled"\nevery = "-1h"', "targets.billy.every: "),
        ('mode = "scheduled"\nevery = "1.5h"', "targets.billy.every: "),
        ('mode = "scheduled"\nevery = 3', "targets.billy.every: must be a string"),
        ('mode = "scheduled"', "targets.billy.every: a scheduled target needs its period"),
        ('mode = "manual"\nevery = "3h"', "targets.billy.every: only a scheduled target"),
        ('mode = "sometimes"', "targets.billy.mode: must be 'continuous', 'scheduled' or 'manual'"),
    ],
)
def test_settings_that_mean_nothing_are_refused_with_their_place(text: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        schedule(text)
    assert f"subledger.toml: {words}" in str(refused.value)


def test_rounds_fall_on_whole_periods_since_the_epoch() -> None:
    three_hours = Schedule("scheduled", 10_800)
    before = datetime(2026, 12, 7, 2, 59, 59, tzinfo=UTC)
    at = datetime(2026, 12, 7, 3, 0, 0, tzinfo=UTC)
    assert three_hours.round_at(at) == three_hours.round_at(before) + 1
    assert three_hours.round_at(datetime(2026, 12, 7, 5, 59, tzinfo=UTC)) == three_hours.round_at(
        at
    )
    assert Schedule("manual").round_at(at) is None
    assert Schedule().round_at(at) is None
