"""Anytime evaluation: accuracy during training, and the metrics summarising it.

An *evaluation point* is taken every ``eval_every`` training samples (current-stream samples
processed by training steps; replayed memory samples are not counted, repeated passes are).
At each point the model is evaluated on the test stream (or a fixed subsample of it) and the
runner logs one line with MLflow ``step`` = samples seen (the MLflow UI draws them as
accuracy-over-time curves):

- ``anytime_eval/accuracy_seen``: mean accuracy over the test experiences seen so far (those
  up to the experience being trained, included); the line's first key;
- ``anytime_eval/exp_NNN``: accuracy on test experience NNN;
- ``anytime_eval/accuracy_stream``: accuracy over all evaluated test samples;
- ``anytime_eval/aaa``: average anytime accuracy up to this point.

At every experience end the summaries go into that experience's line (step = experience;
``cl-report`` shows the ``anytime/`` ones):

- ``anytime/aaa``: average anytime accuracy (Caccia et al., ICLR 2022): the mean of
  ``anytime_eval/accuracy_seen`` over all evaluation points so far;
- ``min_accuracy/exp_NNN``: the lowest accuracy on test experience NNN over the evaluation
  points after NNN was learned (while later experiences were trained): the depth of its
  "stability gap" (De Lange et al., ICLR 2023);
- ``anytime/min_acc``: their mean (De Lange's min-ACC);
- ``anytime/wc_acc``: worst-case accuracy (De Lange et al.): after experience k (1-based),
  ``acc_k / k + (1 - 1/k) * min-ACC``, with ``acc_k`` the accuracy on experience k now.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cl_runner.core import SupervisedPlugin

LINE_KEY = "anytime_eval/accuracy_seen"  # first key of every anytime line (the uploader's sentinel)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


class AnytimeAccuracy:
    """The evaluation points of a run and the summaries over them (plain floats)."""

    def __init__(self, n_experiences: int) -> None:
        self.n = n_experiences
        self.points = 0
        self.sum_seen = 0.0
        self.minimum: list[float] = [math.nan] * n_experiences

    @property
    def aaa(self) -> float:
        return self.sum_seen / self.points if self.points else math.nan

    def add_point(self, current: int, accuracies: Mapping[int, float],
                  stream_accuracy: float) -> dict[str, float]:
        """Record a point taken while training experience ``current``; its line's metrics."""
        seen = [a for j, a in sorted(accuracies.items()) if j <= current]
        accuracy_seen = _mean(seen)
        self.points += 1
        self.sum_seen += accuracy_seen
        for j, a in accuracies.items():
            if j < current and not a >= self.minimum[j]:  # NaN (no value yet) compares False
                self.minimum[j] = a
        line = {LINE_KEY: accuracy_seen}
        line.update({f"anytime_eval/exp_{j:03d}": a for j, a in sorted(accuracies.items())})
        line["anytime_eval/accuracy_stream"] = stream_accuracy
        line["anytime_eval/aaa"] = self.aaa
        return line

    def summary(self, trained: int, current_accuracy: float) -> dict[str, float]:
        """Metrics of the line of experience ``trained`` (0-based), whose accuracy right after
        training is ``current_accuracy``."""
        past = {j: self.minimum[j] for j in range(trained) if not math.isnan(self.minimum[j])}
        metrics = {"anytime/aaa": self.aaa}
        metrics.update({f"min_accuracy/exp_{j:03d}": v for j, v in past.items()})
        min_acc = _mean(list(past.values()))
        k = trained + 1
        metrics["anytime/min_acc"] = min_acc
        if k == 1:
            metrics["anytime/wc_acc"] = current_accuracy
        elif not math.isnan(min_acc):
            metrics["anytime/wc_acc"] = current_accuracy / k + (1 - 1 / k) * min_acc
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"points": self.points, "sum_seen": self.sum_seen, "minimum": list(self.minimum)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.points, self.sum_seen = state["points"], state["sum_seen"]
        self.minimum = list(state["minimum"])


def subsample_stream(stream: Sequence[Any], n: int | None, seed: int) -> list[Any]:
    """A fixed random subset of ``n`` samples of a test stream, as experiences.

    Each experience keeps a share proportional to its size (the remainder to the first
    ones, at least one sample each); drawn from ``torch.Generator().manual_seed(seed)``,
    so the global RNG (and training) is untouched. ``n`` None or >= the stream's size: the
    stream itself.
    """
    import dataclasses

    import torch

    sizes = [len(exp.dataset) for exp in stream]
    total = sum(sizes)
    if n is None or n >= total:
        return list(stream)
    shares = [max(1, n * s // total) for s in sizes]
    for j in range(len(shares)):
        if sum(shares) >= n:
            break
        if shares[j] < sizes[j]:
            shares[j] += 1
    generator = torch.Generator().manual_seed(int(seed))
    out = []
    for exp, size, share in zip(stream, sizes, shares, strict=True):
        keep = torch.randperm(size, generator=generator)[: min(share, size)].sort().values
        out.append(dataclasses.replace(exp, dataset=exp.dataset.subset(keep)))
    return out


def current_samples(strategy: Any, left: int) -> int:
    """Current-experience samples in the mini-batch the loader just gave (``strategy.mbatch``
    at ``before_training_iteration``), at most ``left``.

    Replay loaders put the current data first with its own batch size (``datasets[0]`` /
    ``batch_sizes[0]`` of cl_runner's loaders); other loaders give current data only.
    """
    loader = strategy.dataloader
    datasets = getattr(loader, "datasets", None)
    sizes = getattr(loader, "batch_sizes", None)
    if datasets and sizes and len(datasets) > 1 and datasets[0] is strategy.adapted_dataset:
        return min(sizes[0], left)
    return min(len(strategy.mbatch[1]), left)


class AnytimeTrigger(SupervisedPlugin):
    """Counts training samples and calls ``on_point(strategy, samples_seen)`` after the
    training step that reaches each multiple of ``every`` (the batch protocol's anytime
    evaluation; the online loop evaluates between chunks itself)."""

    def __init__(self, every: int, on_point: Callable[[Any, int], None]) -> None:
        self.every = every
        self.on_point = on_point
        self.samples = 0
        self._left = 0
        self._pending = 0

    def before_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        self._left = len(strategy.adapted_dataset)

    def before_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self._pending = current_samples(strategy, self._left)
        self._left -= self._pending

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        before, self.samples = self.samples, self.samples + self._pending
        if self.samples // self.every > before // self.every:
            self.on_point(strategy, self.samples)

    def state_dict(self) -> dict[str, int]:
        return {"samples": self.samples}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.samples = state["samples"]
