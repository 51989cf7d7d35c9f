"""Replay plugins that misbehave on purpose, selected with `dataloader._target_=` in tests."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
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


UPLOADING = threading.Event()  # set by a test while the writer is inside an MLflow call


class WaitingReplay(ReplayPlugin):
    """Holds training at the start of experience ``wait_at`` until ``UPLOADING`` is set (or
    ``timeout_s`` passes): a test can then act while the run is certainly mid-way."""

    def __init__(self, wait_at: int = 2, timeout_s: float = 60, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_at, self.timeout_s = wait_at, timeout_s

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if strategy.experience.current_experience == self.wait_at:
            UPLOADING.wait(self.timeout_s)
        super().before_training_exp(strategy, **kwargs)


class PausingReplay(ReplayPlugin):
    """Mid-way through experience ``pause_at`` (after ``iterations`` steps) writes the file
    ``marker`` and sleeps ``pause_s`` seconds: a test that waits for the file knows exactly
    where the run is when it sends a signal."""

    def __init__(self, pause_at: int = 2, iterations: int = 3, marker: str = "paused",
                 pause_s: float = 30, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pause_at, self.iterations, self.marker, self.pause_s = (
            pause_at, iterations, marker, pause_s)

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        clock = strategy.clock
        if (strategy.experience.current_experience == self.pause_at
                and clock.train_exp_iterations + 1 == self.iterations):
            Path(self.marker).write_text(str(os.getpid()))
            time.sleep(self.pause_s)


class CrashMidExperience:
    """Mixin for any strategy class (``class CrashingDER(CrashMidExperience, DER)``): raises
    RuntimeError in the first training step of experience ``crash_at``, after the forward
    pass, when the method has already done its work for that experience (memory updates,
    model resets). Selected with ``strategy._target_=``, it adds no plugin, so the resumed
    run's checkpointed plugin list matches the plain strategy's."""

    crash_at = 2

    def criterion(self) -> Any:
        if self.is_training and self.experience.current_experience == self.crash_at:
            raise RuntimeError("boom: injected failure")
        return super().criterion()
