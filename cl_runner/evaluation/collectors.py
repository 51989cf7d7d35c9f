"""Plugins that gather what the runner records per experience, without host syncs per step."""

from __future__ import annotations

import time
from typing import Any

import torch

from cl_runner.core import SupervisedPlugin


class ExperienceStats(SupervisedPlugin):
    """Per-test-experience accuracy of the last eval, train loss and timings of the last train.

    ``accuracies[j]`` is the accuracy on test experience ``j`` (by ``current_experience``);
    ``stream_accuracy`` is the micro average over all evaluated samples (Avalanche's
    Top1_Acc_Stream). Correct counts stay tensors until the experience ends.
    """

    def __init__(self) -> None:
        self.accuracies: dict[int, float] = {}
        self.counts: dict[int, int] = {}
        self.train_loss = float("nan")
        self.train_samples = 0
        self.train_iterations = 0
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        self._correct: torch.Tensor | int = 0
        self._seen = 0
        self._loss_sum: torch.Tensor | float = 0.0
        self._t0 = 0.0

    @property
    def stream_accuracy(self) -> float:
        total = sum(self.counts.values())
        hits = sum(self.accuracies[j] * n for j, n in self.counts.items())
        return hits / total if total else 0.0

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._loss_sum, self.train_samples, self.train_iterations = 0.0, 0, 0
        self._t0 = time.perf_counter()

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        n = len(strategy.mb_y)
        self._loss_sum = self._loss_sum + strategy.loss.detach() * n
        self.train_samples += n
        self.train_iterations += 1

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.train_seconds = time.perf_counter() - self._t0
        self.train_loss = (
            float(self._loss_sum) / self.train_samples if self.train_samples else float("nan")
        )

    def before_eval(self, strategy: Any, **kwargs: Any) -> None:
        self.accuracies, self.counts = {}, {}
        self._t0 = time.perf_counter()

    def before_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._correct, self._seen = 0, 0

    def after_eval_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self._correct = self._correct + (strategy.mb_output.argmax(1) == strategy.mb_y).sum()
        self._seen += len(strategy.mb_y)

    def after_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        j = strategy.experience.current_experience
        self.accuracies[j] = float(self._correct) / self._seen if self._seen else 0.0
        self.counts[j] = self._seen

    def after_eval(self, strategy: Any, **kwargs: Any) -> None:
        self.eval_seconds = time.perf_counter() - self._t0
