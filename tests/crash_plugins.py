"""Replay plugins that misbehave on purpose, selected with `dataloader._target_=` in tests."""

from __future__ import annotations

import time
from typing import Any

from cl_runner.training import ReplayPlugin


class CrashingReplay(ReplayPlugin):
    """Raises RuntimeError when training experience ``crash_at`` starts."""

    def __init__(self, crash_at: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.crash_at = crash_at

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if strategy.experience.current_experience == self.crash_at:
            raise RuntimeError("boom: injected failure")
        super().before_training_exp(strategy, **kwargs)


class PacedReplay(ReplayPlugin):
    """Sleeps ``iteration_delay_s`` after every training iteration, so that a test can
    interrupt a run mid-experience however fast the machine trains (the math is unchanged)."""

    def __init__(self, iteration_delay_s: float = 0.02, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.iteration_delay_s = iteration_delay_s

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        time.sleep(self.iteration_delay_s)
