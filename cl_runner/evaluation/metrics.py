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
    "epoch_running": ("before_training_epoch", "after_training_iteration",
                      "after_training_iteration"),
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

    The key's initial accuracy comes from evaluating the experience whose id is the last
    trained one; every other evaluated experience updates its last accuracy (cleared before
    each evaluation), as in Avalanche. Per-experience values for the keys with both; the
    stream value is their unweighted mean, 0.0 when there is none (Avalanche emits it too).
    ``sign=-1`` gives BWT instead. Outside a strategy, ``update(k, v, initial)``,
    ``result()``, ``result_key(k)`` and ``reset()`` act on the inner ``Forgetting``.
    """

    def __init__(self, experience: bool, stream: bool, sign: int = 1):
        from cl_runner.evaluation.standalone import BWT, Forgetting

        self.experience, self.stream, self.sign = experience, stream, sign
        self.exp_base = "ExperienceForgetting" if sign == 1 else "ExperienceBWT"
        self.stream_base = "StreamForgetting" if sign == 1 else "StreamBWT"
        self.forgetting = Forgetting() if sign == 1 else BWT()
        self.last_trained: int | None = None
        self._acc = MeanMetric("", "experience", _correct)

    # -- Avalanche's standalone interface -----------------------------------------------------
    def update(self, k: Any, v: float, initial: bool = False) -> None:
        self.forgetting.update(k, v, initial=initial)

    def result_key(self, k: Any) -> float | None:
        return self.forgetting.result_key(k)

    def result(self) -> Any:
        """Per-key values (experience metrics), or their mean (stream metrics)."""
        values = self.forgetting.result()
        if self.experience:
            return values
        return sum(values.values()) / len(values) if values else 0.0

    def reset(self) -> None:
        self.forgetting.reset()

    # -- plugin callbacks ---------------------------------------------------------------------
    def before_training_exp(self, strategy: Any) -> list[MetricValue]:
        self.last_trained = strategy.experience.current_experience
        return []

    def before_eval(self, strategy: Any) -> list[MetricValue]:
        self.forgetting.reset_last()
        return []

    def after_eval_exp(self, strategy: Any) -> list[MetricValue]:
        k = strategy.experience.current_experience
        self.forgetting.update(k, self._acc.result(), initial=k == self.last_trained)
        value = self.forgetting.result_key(k)
        if not self.experience or value is None:
            return []
        name = metric_name(self.exp_base, strategy, "experience")
        return [MetricValue(name, value, strategy.clock.train_iterations)]

    def after_eval(self, strategy: Any) -> list[MetricValue]:
        if not self.stream:
            return []
        values = list(self.forgetting.result().values())
        name = f"{self.stream_base}/eval_phase/{strategy.experience.origin_stream}_stream"
        mean = sum(values) / len(values) if values else 0.0
        return [MetricValue(name, mean, strategy.clock.train_iterations)]

    def events(self) -> dict[str, Callable[[Any], list[MetricValue]]]:
        return {
            "before_training_exp": self.before_training_exp,
            "before_eval": self.before_eval,
            "before_eval_exp": self._acc.reset,
            "after_eval_iteration": self._acc.update,
            "after_eval_exp": self.after_eval_exp,
            "after_eval": self.after_eval,
        }


class ExperienceForgetting(ForgettingMetric):
    """``ExperienceForgetting/eval_phase/{stream}_stream/TaskTTT/ExpEEE`` per experience."""

    def __init__(self) -> None:
        super().__init__(experience=True, stream=False)


class StreamForgetting(ForgettingMetric):
    """``StreamForgetting/eval_phase/{stream}_stream``: the mean over experiences."""

    def __init__(self) -> None:
        super().__init__(experience=False, stream=True)


class ExperienceBWT(ForgettingMetric):
    """``ExperienceBWT/...``: minus ``ExperienceForgetting``."""

    def __init__(self) -> None:
        super().__init__(experience=True, stream=False, sign=-1)


class StreamBWT(ForgettingMetric):
    """``StreamBWT/...``: minus ``StreamForgetting``."""

    def __init__(self) -> None:
        super().__init__(experience=False, stream=True, sign=-1)


class TrainedExperienceAccuracy(MeanMetric):
    """``Accuracy_On_Trained_Experiences``: stream accuracy over the evaluated experiences
    whose id is at most the last trained one (0 before any training), as in Avalanche."""

    def __init__(self) -> None:
        super().__init__("Accuracy_On_Trained_Experiences", "stream", _correct)
        self.last_trained = 0

    def after_training_exp(self, strategy: Any) -> list[MetricValue]:
        self.last_trained = strategy.experience.current_experience
        return self.reset(strategy)

    def update(self, strategy: Any) -> list[MetricValue]:
        if strategy.experience.current_experience <= self.last_trained:
            return super().update(strategy)
        return []

    def events(self) -> dict[str, Callable[[Any], list[MetricValue]]]:
        return {**super().events(), "after_training_exp": self.after_training_exp}


class TimingMetric(PluginMetric):
    """Avalanche's elapsed-time metrics: the time from the level's start to its last
    iteration (``Time_MB/Epoch/Exp/Stream``); ``RunningTime_Epoch`` keeps Avalanche's running
    mean, which after the first iteration of an epoch adds zeros (it restarts its timer at
    the end of each iteration and reads it at the next end)."""

    # level -> (start event, update event, emit event)
    EVENTS = {
        "minibatch": ("before_training_iteration", "after_training_iteration",
                      "after_training_iteration"),
        "epoch": ("before_training_epoch", "after_training_iteration", "after_training_epoch"),
        "epoch_running": ("before_training_epoch", "after_training_iteration",
                          "after_training_iteration"),
        "experience": ("before_eval_exp", "after_eval_iteration", "after_eval_exp"),
        "stream": ("before_eval", "after_eval_iteration", "after_eval"),
    }
    NAMES = {"minibatch": "Time_MB", "epoch": "Time_Epoch", "epoch_running": "RunningTime_Epoch",
             "experience": "Time_Exp", "stream": "Time_Stream"}

    def __init__(self, level: str) -> None:
        from cl_runner.evaluation.standalone import ElapsedTime, Mean

        self.level = level
        self.base = self.NAMES[level]
        self._time = ElapsedTime()
        self._running = Mean()

    def start(self, strategy: Any) -> list[MetricValue]:
        self._time.reset()
        self._running.reset()
        self._time.update()
        return []

    def update(self, strategy: Any) -> list[MetricValue]:
        self._time.update()
        if self.level == "epoch_running":
            self._running.update(self._time.result())
            self._time.reset()
        return []

    def result(self) -> float:
        return self._running.result() if self.level == "epoch_running" else self._time.result()

    def emit(self, strategy: Any) -> list[MetricValue]:
        level = "epoch" if self.level == "epoch_running" else self.level
        name = metric_name(self.base, strategy, level)
        return [MetricValue(name, self.result(), strategy.clock.train_iterations)]

    def events(self) -> dict[str, Callable[[Any], list[MetricValue]]]:
        start, update, emit = self.EVENTS[self.level]
        if update == emit:
            return {start: self.start, update: lambda s: self.update(s) or self.emit(s)}
        return {start: self.start, update: self.update, emit: self.emit}


def _levels(**flags: bool) -> list[str]:
    return [level for level, on in flags.items() if on]


def accuracy_metrics(
    *, minibatch: bool = False, epoch: bool = False, epoch_running: bool = False,
    experience: bool = False, stream: bool = False, trained_experience: bool = False,
) -> list[PluginMetric]:
    """Top-1 accuracy at the chosen levels: ``Top1_Acc_MB``, ``Top1_Acc_Epoch``,
    ``Top1_RunningAcc_Epoch``, ``Top1_Acc_Exp``, ``Top1_Acc_Stream``,
    ``Accuracy_On_Trained_Experiences``."""
    levels = _levels(minibatch=minibatch, epoch=epoch, epoch_running=epoch_running,
                     experience=experience, stream=stream)
    metrics: list[PluginMetric] = [
        MeanMetric(_name("Top1_Acc", "Top1_RunningAcc", lv), lv, _correct) for lv in levels]
    if trained_experience:
        metrics.append(TrainedExperienceAccuracy())
    return metrics


def loss_metrics(
    *, minibatch: bool = False, epoch: bool = False, epoch_running: bool = False,
    experience: bool = False, stream: bool = False,
) -> list[PluginMetric]:
    """Mean criterion value at the chosen levels: ``Loss_MB``, ``Loss_Epoch``,
    ``RunningLoss_Epoch``, ``Loss_Exp``, ``Loss_Stream``."""
    levels = _levels(minibatch=minibatch, epoch=epoch, epoch_running=epoch_running,
                     experience=experience, stream=stream)
    return [MeanMetric(_name("Loss", "RunningLoss", lv), lv, _loss_sum) for lv in levels]


def _name(base: str, running: str, level: str) -> str:
    return f"{running}_Epoch" if level == "epoch_running" else f"{base}_{LEVEL_SUFFIX[level]}"


def timing_metrics(
    *, minibatch: bool = False, epoch: bool = False, epoch_running: bool = False,
    experience: bool = False, stream: bool = False,
) -> list[PluginMetric]:
    """Elapsed time at the chosen levels: ``Time_MB``, ``Time_Epoch``, ``RunningTime_Epoch``,
    ``Time_Exp``, ``Time_Stream`` (seconds)."""
    levels = _levels(minibatch=minibatch, epoch=epoch, epoch_running=epoch_running,
                     experience=experience, stream=stream)
    return [TimingMetric(lv) for lv in levels]


def forgetting_metrics(*, experience: bool = False, stream: bool = False) -> list[PluginMetric]:
    """``ExperienceForgetting`` / ``StreamForgetting`` (initial minus current accuracy)."""
    return ([ExperienceForgetting()] if experience else []) + (
        [StreamForgetting()] if stream else [])


def bwt_metrics(*, experience: bool = False, stream: bool = False) -> list[PluginMetric]:
    """``ExperienceBWT`` / ``StreamBWT``: minus forgetting."""
    return ([ExperienceBWT()] if experience else []) + ([StreamBWT()] if stream else [])
