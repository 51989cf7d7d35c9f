"""Avalanche's standalone metrics: objects with ``update`` / ``result`` / ``reset`` that compute
a value outside any strategy, with Avalanche 0.6's names, arguments and results.

- ``Accuracy``: ``update(predicted_y, true_y)`` (labels, or logits / one-hot rows turned into
  labels by argmax; lists work), ``result()`` the pattern-weighted accuracy since the last
  reset (0.0 when empty). Empty input raises ZeroDivisionError, unequal lengths ValueError.
- ``TaskAwareAccuracy``: ``update(predicted_y, true_y, task_labels)`` with one int task label
  or a tensor of one per sample; ``result(task_label=None)`` -> ``{task: accuracy}`` (asking
  for an unseen task returns 0.0 and adds it, as Avalanche's defaultdict does).
- ``LossMetric`` (``update(loss, patterns)``: the mean of ``loss`` weighted by ``patterns``)
  and ``TaskAwareLoss`` (``update(loss, patterns, task_label)``).
- ``Forgetting`` (``update(k, v, initial=False)``; ``result()`` -> ``{k: initial - last}``
  for keys with both; ``result_key(k)``; ``reset_last()``) and ``BWT`` (``last - initial``).
- ``ElapsedTime`` and ``Mean``.

Counts are kept as Python floats, updated with the same arithmetic as Avalanche's, so results
agree to the last bit.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy.load("torch")


class Mean:
    """A weighted mean: ``update(value, weight=1.0)``; ``result()`` 0.0 when nothing was added."""

    def __init__(self) -> None:
        self.summed = 0.0
        self.weight = 0.0

    def update(self, value: float, weight: float = 1.0) -> None:
        value, weight = float(value), float(weight)
        self.summed += value * weight
        self.weight += weight

    def result(self) -> float:
        return 0.0 if self.weight == 0 else self.summed / self.weight

    def reset(self) -> None:
        self.summed = 0.0
        self.weight = 0.0


def _labels(values: Any) -> Tensor:
    values = torch.as_tensor(values)
    return values.argmax(dim=1) if values.dim() > 1 else values


class Accuracy:
    """Accuracy over every prediction since the last reset (see the module docstring)."""

    def __init__(self) -> None:
        self._mean_accuracy = Mean()

    def update(self, predicted_y: Any, true_y: Any) -> None:
        true_y = torch.as_tensor(true_y)
        predicted_y = torch.as_tensor(predicted_y)
        if len(true_y) != len(predicted_y):
            raise ValueError("Size mismatch for true_y and predicted_y tensors")
        with torch.no_grad():
            correct = float(torch.sum(torch.eq(_labels(predicted_y), _labels(true_y))))
        n = len(true_y)
        self._mean_accuracy.update(correct / n, n)

    def result(self) -> float:
        return self._mean_accuracy.result()

    def reset(self) -> None:
        self._mean_accuracy.reset()


class TaskAwareAccuracy:
    """Accuracy per task label: ``result()`` -> ``{task: accuracy}``."""

    def __init__(self) -> None:
        self._mean_accuracy: defaultdict[int, Accuracy] = defaultdict(Accuracy)

    def update(self, predicted_y: Any, true_y: Any, task_labels: Any) -> None:
        if len(true_y) != len(predicted_y):
            raise ValueError("Size mismatch for true_y and predicted_y tensors")
        if isinstance(task_labels, int):
            self._mean_accuracy[task_labels].update(predicted_y, true_y)
            return
        if not isinstance(task_labels, torch.Tensor):
            raise ValueError(
                f"Task label type: {type(task_labels)}, expected int/float or Tensor")
        predicted, true = torch.as_tensor(predicted_y), torch.as_tensor(true_y)
        with torch.no_grad():
            hits = torch.eq(_labels(predicted), _labels(true))
        # Avalanche updates one sample at a time: each adds 1.0 or 0.0 with weight 1
        for task, hit in zip(task_labels.tolist(), hits.tolist(), strict=False):
            self._mean_accuracy[task]._mean_accuracy.update(float(hit), 1)

    def result(self, task_label: int | None = None) -> dict[int, float]:
        if task_label is None:
            return {k: v.result() for k, v in self._mean_accuracy.items()}
        return {task_label: self._mean_accuracy[task_label].result()}

    def reset(self, task_label: int | None = None) -> None:
        if task_label is None:
            self._mean_accuracy = defaultdict(Accuracy)
        else:
            self._mean_accuracy[task_label].reset()


class LossMetric:
    """The mean loss, weighted by the number of patterns of each update."""

    def __init__(self) -> None:
        self._mean_loss = Mean()

    def update(self, loss: Any, patterns: int) -> None:
        value = torch.as_tensor(loss).detach()
        if not value.is_floating_point():
            value = value.to(torch.float32)
        self._mean_loss.update(torch.mean(value).item(), weight=patterns)

    def result(self) -> float:
        return self._mean_loss.result()

    def reset(self) -> None:
        self._mean_loss.reset()


class TaskAwareLoss:
    """The mean loss per task label: ``update(loss, patterns, task_label)``."""

    def __init__(self) -> None:
        self._mean_loss: defaultdict[int, LossMetric] = defaultdict(LossMetric)

    def update(self, loss: Any, patterns: int, task_label: int) -> None:
        self._mean_loss[task_label].update(loss, patterns)

    def result(self) -> dict[int, float]:
        return {k: v.result() for k, v in self._mean_loss.items()}

    def result_task_label(self, task_label: int) -> dict[int, float]:
        return {task_label: self._mean_loss[task_label].result()}

    def reset(self) -> None:
        self._mean_loss = defaultdict(LossMetric)

    def reset_task_label(self, task_label: int) -> None:
        self._mean_loss[task_label].reset()


class Forgetting:
    """``initial - last`` per key, for the keys that have both values."""

    def __init__(self) -> None:
        self.initial: dict[Any, float] = {}
        self.last: dict[Any, float] = {}

    def update_initial(self, k: Any, v: float) -> None:
        self.initial[k] = v

    def update_last(self, k: Any, v: float) -> None:
        self.last[k] = v

    def update(self, k: Any, v: float, initial: bool = False) -> None:
        if initial:
            self.update_initial(k, v)
        else:
            self.update_last(k, v)

    def result_key(self, k: Any) -> float | None:
        if k not in self.initial or k not in self.last:
            return None
        return self.initial[k] - self.last[k]

    def result(self) -> dict[Any, float]:
        return {k: self.initial[k] - self.last[k] for k in self.initial if k in self.last}

    def reset_last(self) -> None:
        self.last = {}

    def reset(self) -> None:
        self.initial = {}
        self.last = {}


def forgetting_to_bwt(value: Any) -> Any:
    """Backward transfer from forgetting: the negation of a float, or of a dict's values.

    Like Avalanche, any other type (an int, None) is refused.
    """
    if isinstance(value, dict):
        return {k: -v for k, v in value.items()}
    if isinstance(value, float):
        return -value
    raise ValueError("Forgetting data type not recognized when converting to backward "
                     "transfer.")


class BWT(Forgetting):
    """Backward transfer: ``last - initial`` per key (minus ``Forgetting``)."""

    def result_key(self, k: Any) -> float | None:
        forgetting = super().result_key(k)
        return None if forgetting is None else forgetting_to_bwt(forgetting)

    def result(self) -> dict[Any, float]:
        return forgetting_to_bwt(super().result())


class ElapsedTime:
    """Seconds from the first ``update()`` to the latest (0.0 before two updates)."""

    def __init__(self) -> None:
        self._init_time: float | None = None
        self._prev_time: float | None = None

    def update(self) -> None:
        now = time.perf_counter()
        if self._init_time is None:
            self._init_time = now
        self._prev_time = now

    def result(self) -> float:
        if self._init_time is None:
            return 0.0
        return self._prev_time - self._init_time

    def reset(self) -> None:
        self._init_time = None
        self._prev_time = None


__all__ = [
    "BWT",
    "Accuracy",
    "ElapsedTime",
    "Forgetting",
    "LossMetric",
    "Mean",
    "TaskAwareAccuracy",
    "TaskAwareLoss",
    "forgetting_to_bwt",
]
