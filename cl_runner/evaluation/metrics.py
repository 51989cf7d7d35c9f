"""Avalanche-style plugin metrics: accuracy, loss, forgetting and BWT, named as Avalanche does.

A metric is reset, updated and emitted on fixed callbacks given by its level; sums are kept
as tensors so the training loop never waits for a host sync.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

# level -> (reset event, update event, emit event)
LEVEL_EVENTS = {
    "minibatch": ("before_training_iteration", "after_training_iteration",
                  "after_training_iteration"),
    "epoch": ("before_training_epoch", "after_training_iteration", "after_training_epoch"),
    "experience": ("before_eval_exp", "after_eval_iteration", "after_eval_exp"),
    "stream": ("before_eval", "after_eval_iteration", "after_eval"),
}
LEVEL_SUFFIX = {"minibatch": "MB", "epoch": "Epoch", "experience": "Exp", "stream": "Stream"}


@dataclass(frozen=True)
class MetricValue:
    """One emitted value: full Avalanche name, value, and x = training iterations so far."""

    name: str
    value: float
    x: int


def metric_name(base: str, strategy: Any, level: str) -> str:
    """``{base}/{phase}_phase/{stream}_stream[/TaskTTT][/ExpEEE]`` as Avalanche names them.

    Stream-level names carry the task label only if every evaluated experience shares it.
    """
    exp = strategy.experience
    phase = "train" if strategy.is_training else "eval"
    stream = exp.origin_stream if exp is not None else "test"
    name = f"{base}/{phase}_phase/{stream}_stream"
    if level == "stream":
        tasks = {e.task_label for e in (strategy.current_eval_stream or [])}
        return name + (f"/Task{tasks.pop():03d}" if len(tasks) == 1 else "")
    name += f"/Task{exp.task_label:03d}"
    if level == "experience":
        name += f"/Exp{exp.current_experience:03d}"
    return name


def _correct(strategy: Any) -> tuple[Tensor, int]:
    pred = strategy.mb_output.argmax(dim=1)
    return (pred == strategy.mb_y).sum(), len(pred)


def _loss_sum(strategy: Any) -> tuple[Tensor, int]:
    n = len(strategy.mb_y)
    return strategy.loss.detach() * n, n


class PluginMetric:
    """A metric as the EvaluationPlugin drives it: callbacks that may emit values."""

    def events(self) -> dict[str, Callable[[Any], list[MetricValue]]]:
        raise NotImplementedError


class MeanMetric(PluginMetric):
    """Sample-weighted mean of a per-batch quantity over a level's scope (micro average)."""

    def __init__(self, base: str, level: str, quantity: Callable[[Any], tuple[Tensor, int]]):
        self.base, self.level, self.quantity = base, level, quantity
        self._sum: Tensor | float = 0.0
        self._count = 0

    def reset(self, strategy: Any) -> list[MetricValue]:
        self._sum, self._count = 0.0, 0
        return []

    def update(self, strategy: Any) -> list[MetricValue]:
        total, n = self.quantity(strategy)
        self._sum = self._sum + total
        self._count += n
        return []

    def result(self) -> float:
        return float(self._sum) / self._count if self._count else 0.0

    def emit(self, strategy: Any) -> list[MetricValue]:
        name = metric_name(self.base, strategy, self.level)
        return [MetricValue(name, self.result(), strategy.clock.train_iterations)]

    def events(self) -> dict[str, Callable[[Any], list[MetricValue]]]:
        reset, update, emit = LEVEL_EVENTS[self.level]
        if update == emit:  # minibatch: update then emit on the same event
            return {reset: self.reset, update: lambda s: self.update(s) or self.emit(s)}
        return {reset: self.reset, update: self.update, emit: self.emit}


class ForgettingMetric(PluginMetric):
    """Accuracy on an experience right after training it minus its accuracy now.

    Per-experience values for every experience already trained and evaluated before;
    the stream value is their unweighted mean. ``sign=-1`` gives BWT instead.
    """

    def __init__(self, experience: bool, stream: bool, sign: int = 1):
        self.experience, self.stream, self.sign = experience, stream, sign
        self.exp_base = "ExperienceForgetting" if sign == 1 else "ExperienceBWT"
        self.stream_base = "StreamForgetting" if sign == 1 else "StreamBWT"
        self.initial: dict[int, float] = {}
        self.current: dict[int, float] = {}
        self.last_trained: int | None = None
        self._acc = MeanMetric("", "experience", _correct)

    def before_training_exp(self, strategy: Any) -> list[MetricValue]:
        self.last_trained = strategy.experience.current_experience
        return []

    def before_eval(self, strategy: Any) -> list[MetricValue]:
        self.current = {}
        return []

    def after_eval_exp(self, strategy: Any) -> list[MetricValue]:
        k = strategy.experience.current_experience
        acc = self._acc.result()
        if k == self.last_trained:
            self.initial[k] = acc
        self.current[k] = acc
        if not self.experience or k not in self.initial or k == self.last_trained:
            return []
        name = metric_name(self.exp_base, strategy, "experience")
        return [MetricValue(name, self.sign * (self.initial[k] - acc),
                            strategy.clock.train_iterations)]

    def after_eval(self, strategy: Any) -> list[MetricValue]:
        values = [self.initial[k] - a for k, a in self.current.items()
                  if k in self.initial and k != self.last_trained]
        if not self.stream or not values:
            return []
        name = f"{self.stream_base}/eval_phase/{strategy.experience.origin_stream}_stream"
        return [MetricValue(name, self.sign * sum(values) / len(values),
                            strategy.clock.train_iterations)]

    def events(self) -> dict[str, Callable[[Any], list[MetricValue]]]:
        return {
            "before_training_exp": self.before_training_exp,
            "before_eval": self.before_eval,
            "before_eval_exp": self._acc.reset,
            "after_eval_iteration": self._acc.update,
            "after_eval_exp": self.after_eval_exp,
            "after_eval": self.after_eval,
        }


def _levels(**flags: bool) -> list[str]:
    return [level for level, on in flags.items() if on]


def accuracy_metrics(
    *, minibatch: bool = False, epoch: bool = False, experience: bool = False,
    stream: bool = False,
) -> list[PluginMetric]:
    """Top-1 accuracy at the chosen levels (``Top1_Acc_MB/Epoch/Exp/Stream``)."""
    levels = _levels(minibatch=minibatch, epoch=epoch, experience=experience, stream=stream)
    return [MeanMetric(f"Top1_Acc_{LEVEL_SUFFIX[lv]}", lv, _correct) for lv in levels]


def loss_metrics(
    *, minibatch: bool = False, epoch: bool = False, experience: bool = False,
    stream: bool = False,
) -> list[PluginMetric]:
    """Mean criterion value at the chosen levels (``Loss_MB/Epoch/Exp/Stream``)."""
    levels = _levels(minibatch=minibatch, epoch=epoch, experience=experience, stream=stream)
    return [MeanMetric(f"Loss_{LEVEL_SUFFIX[lv]}", lv, _loss_sum) for lv in levels]


def forgetting_metrics(*, experience: bool = False, stream: bool = False) -> list[PluginMetric]:
    """``ExperienceForgetting`` / ``StreamForgetting`` (initial minus current accuracy)."""
    return [ForgettingMetric(experience, stream)] if experience or stream else []


def bwt_metrics(*, experience: bool = False, stream: bool = False) -> list[PluginMetric]:
    """``ExperienceBWT`` / ``StreamBWT``: minus forgetting."""
    return [ForgettingMetric(experience, stream, sign=-1)] if experience or stream else []

