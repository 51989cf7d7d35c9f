"""Plugins that gather what the runner records per experience, without host syncs per step."""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from cl_runner.core import SupervisedPlugin


class ExperienceStats(SupervisedPlugin):
    """Accuracy of the last eval (per test experience and per class), and the loss, extra
    loss terms and timings of the last training.

    ``accuracies[j]`` is the accuracy on test experience ``j`` (by ``current_experience``);
    ``stream_accuracy`` is the micro average over all evaluated samples (Avalanche's
    Top1_Acc_Stream); ``class_accuracies[c]`` the accuracy on the test samples of class ``c``
    (NaN without any). ``loss_terms`` are the means of the named terms a method reports in
    ``strategy.loss_terms`` (DER's logit replay, ...). Sums stay tensors until the end.
    Evaluations during training (anytime or periodic) are not counted as training time.

    With ``accumulate`` set, the training figures cover a *period* the runner opens and
    closes (``start_period`` / ``end_period``: an original experience of an online stream,
    whose chunks are experiences to the strategy) instead of one experience.
    """

    def __init__(self, n_classes: int = 0) -> None:
        self.n_classes = n_classes
        self.accuracies: dict[int, float] = {}
        self.counts: dict[int, int] = {}
        self.class_accuracies: list[float] = [math.nan] * n_classes
        self.train_loss = float("nan")
        self.loss_terms: dict[str, float] = {}
        self.train_samples = 0
        self.train_iterations = 0
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        self._correct: torch.Tensor | int = 0
        self._seen = 0
        self._class_hits: torch.Tensor | int = 0
        self._class_counts: torch.Tensor | int = 0
        self._loss_sum: torch.Tensor | float = 0.0
        self._term_sums: dict[str, torch.Tensor] = {}
        self._t0 = 0.0
        self._eval_t0 = 0.0
        self._eval_in_training = 0.0
        self._training = False
        self.accumulate = False

    @property
    def stream_accuracy(self) -> float:
        total = sum(self.counts.values())
        hits = sum(self.accuracies[j] * n for j, n in self.counts.items())
        return hits / total if total else 0.0

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if not self.accumulate:
            self.start_period()

    def start_period(self) -> None:
        """Reset the training figures (the runner calls it in ``accumulate`` mode)."""
        self._loss_sum, self.train_samples, self.train_iterations = 0.0, 0, 0
        self._term_sums = {}
        self._eval_in_training = 0.0
        self._training = True
        self._t0 = time.perf_counter()

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        n = len(strategy.mb_y)
        self._loss_sum = self._loss_sum + strategy.loss.detach() * n
        for name, term in getattr(strategy, "loss_terms", {}).items():
            self._term_sums[name] = self._term_sums.get(name, 0.0) + term.detach() * n
        self.train_samples += n
        self.train_iterations += 1

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if not self.accumulate:
            self.end_period(time.perf_counter() - self._t0 - self._eval_in_training)

    def end_period(self, train_seconds: float) -> None:
        """Close the training figures: loss means and ``train_seconds``."""
        self._training = False
        self.train_seconds = train_seconds
        n = self.train_samples
        self.train_loss = float(self._loss_sum) / n if n else float("nan")
        self.loss_terms = {name: float(s) / n for name, s in self._term_sums.items()}

    def period_state(self) -> dict[str, Any]:
        """The open period's sums (a checkpoint inside an online experience keeps them)."""
        return {"loss_sum": torch.as_tensor(self._loss_sum).cpu(),
                "term_sums": {k: torch.as_tensor(v).cpu() for k, v in self._term_sums.items()},
                "samples": self.train_samples, "iterations": self.train_iterations}

    def load_period_state(self, state: dict[str, Any]) -> None:
        self.start_period()
        self._loss_sum = state["loss_sum"]
        self._term_sums = dict(state["term_sums"])
        self.train_samples, self.train_iterations = state["samples"], state["iterations"]

    def before_eval(self, strategy: Any, **kwargs: Any) -> None:
        self.accuracies, self.counts = {}, {}
        self._class_hits, self._class_counts = 0, 0
        self._eval_t0 = time.perf_counter()

    def before_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._correct, self._seen = 0, 0

    def after_eval_iteration(self, strategy: Any, **kwargs: Any) -> None:
        y = strategy.mb_y
        hit = strategy.mb_output.argmax(1) == y
        self._correct = self._correct + hit.sum()
        self._seen += len(y)
        if self.n_classes:
            self._class_hits = self._class_hits + torch.bincount(y[hit], minlength=self.n_classes)
            self._class_counts = self._class_counts + torch.bincount(y, minlength=self.n_classes)

    def after_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        j = strategy.experience.current_experience
        self.accuracies[j] = float(self._correct) / self._seen if self._seen else 0.0
        self.counts[j] = self._seen

    def after_eval(self, strategy: Any, **kwargs: Any) -> None:
        self.eval_seconds = time.perf_counter() - self._eval_t0
        if self._training:
            self._eval_in_training += self.eval_seconds
        if self.n_classes and isinstance(self._class_counts, torch.Tensor):
            hits, counts = self._class_hits.tolist(), self._class_counts.tolist()
            self.class_accuracies = [h / n if n else math.nan
                                     for h, n in zip(hits, counts, strict=True)]
