"""A replay plugin that pauses one chosen job of a sweep, for tests that kill it there.

``dataloader._target_=tests.sweep_plugins.PauseNth +dataloader.marker=PATH`` (plus
``+dataloader.nth=N``): every job that reaches iteration ``iterations`` of experience
``pause_at`` appends a line to ``PATH.count``; the ``nth`` to arrive (1-based) writes ``PATH``
(its pid and SLURM job, as JSON) and sleeps ``pause_s`` seconds, the others go on. The settings are
the same for every job of the sweep and for its resume, so ``resume=true`` finds the runs,
and a resumed run does not pause again (it arrives later than ``nth``).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from cl_runner.training import ReplayPlugin


def _slurm_job() -> str | None:
    """The job's SLURM id as scancel takes it (``ARRAY_TASK`` for a task of a job array)."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


class PauseNth(ReplayPlugin):
    def __init__(self, marker: str = "paused", nth: int = 1, pause_at: int = 2,
                 iterations: int = 2, pause_s: float = 120, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.marker, self.nth, self.pause_at = marker, nth, pause_at
        self.iterations, self.pause_s = iterations, pause_s

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        if (strategy.experience.current_experience != self.pause_at
                or strategy.clock.train_exp_iterations + 1 != self.iterations):
            return
        with open(f"{self.marker}.count", "a+") as counter:  # jobs may run in parallel
            fcntl.flock(counter, fcntl.LOCK_EX)
            counter.seek(0)
            arrived = len(counter.read().splitlines()) + 1
            counter.write(f"{os.getpid()}\n")
        if arrived == self.nth:
            info = {"pid": os.getpid(), "slurm_job": _slurm_job()}
            Path(self.marker).write_text(json.dumps(info))
            time.sleep(self.pause_s)
