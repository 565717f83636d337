"""Brownouts: Dinero answers 480 at random while it retires an endpoint; this does so on
purpose, at a rate set while the sandbox runs."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from subledger.adapters.sandbox.dinero.envelope import DineroError
from subledger.adapters.sandbox.dinero.settings import BrownoutSettings
from subledger.adapters.sandbox.faults import random_draws
from subledger.adapters.sandbox.fields import Record


class Brownouts:
    """The brownout switch: its settings, its draws and how many it has injected."""

    def __init__(self, settings: BrownoutSettings) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self._random = random_draws(settings.seed)
        self.injected = 0

    @property
    def settings(self) -> BrownoutSettings:
        return self._settings

    def update(self, changes: Mapping[str, Any]) -> BrownoutSettings:
        with self._lock:
            settings = BrownoutSettings.model_validate({**self._settings.model_dump(), **changes})
            self._settings = settings
            if "seed" in changes:
                self._random = random_draws(settings.seed)
        return settings

    def reset(self) -> None:
        with self._lock:
            self._random = random_draws(self._settings.seed)
            self.injected = 0

    def draw(self) -> bool:
        """True when this request browns out (a switch that is off draws nothing)."""
        with self._lock:
            rate = self._settings.rate
            if rate > 0 and self._random.random() < rate:
                self.injected += 1
                return True
            return False

    def view(self) -> Record:
        with self._lock:
            return {**self._settings.model_dump(), "injected": self.injected}


def brownout_error(message: str) -> DineroError:
    return DineroError(480, None, message)
