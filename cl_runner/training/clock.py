"""Training counters plugins read (Avalanche's Clock), advanced after every other plugin."""

from __future__ import annotations

from typing import Any

from cl_runner.core import SupervisedPlugin


class Clock(SupervisedPlugin):
    """Iteration, epoch and experience counters; always the last plugin."""

    def __init__(self) -> None:
        self.train_iterations = 0
        self.train_exp_counter = 0
        self.train_exp_epochs = 0
        self.train_exp_iterations = 0
        self.train_epoch_iterations = 0
        self.total_iterations = 0

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.train_exp_iterations = 0
        self.train_exp_epochs = 0

    def before_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        self.train_epoch_iterations = 0

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self.train_epoch_iterations += 1
        self.train_exp_iterations += 1
        self.train_iterations += 1
        self.total_iterations += 1

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        self.train_exp_epochs += 1

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.train_exp_counter += 1

    def after_eval_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self.total_iterations += 1

    COUNTERS = ("train_iterations", "train_exp_counter", "train_exp_epochs",
                "train_exp_iterations", "train_epoch_iterations", "total_iterations")

    def state_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTERS}

    def load_state_dict(self, state: dict[str, int]) -> None:
        for name in self.COUNTERS:
            setattr(self, name, state[name])
