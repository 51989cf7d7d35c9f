"""Everything a run has measured after each experience, and the metrics it logs from it.

Two accuracy matrices (test experiences and classes: a class is introduced by the first
experience that trains on it), the buffer's per-class composition, and the metric names
MLflow receives (see the README's "What each run records").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cl_runner.evaluation.matrix import AccuracyMatrix

if TYPE_CHECKING:  # the collectors need torch; the runner imports this module before torch
    from cl_runner.evaluation.collectors import ExperienceStats


class Measurements:
    """The experience and class matrices and the buffer composition, row by row."""

    def __init__(self, n_experiences: int, n_classes: int) -> None:
        self.experiences = AccuracyMatrix(n_experiences)
        self.classes = AccuracyMatrix(n_classes, introduced=[None] * n_classes)
        self.composition: list[list[int]] = []

    @property
    def n_trained(self) -> int:
        return self.experiences.n_trained

    def add(self, trained_classes: Sequence[int], stats: ExperienceStats,
            class_counts: Sequence[int]) -> None:
        """One row each, after training an experience with ``trained_classes``."""
        i = self.n_trained
        self.experiences.add_row([stats.accuracies[j] for j in range(self.experiences.n)])
        for c in trained_classes:
            if self.classes.introduced[c] is None:
                self.classes.introduced[c] = i
        self.classes.add_row(stats.class_accuracies)
        self.composition.append(list(class_counts))

    def metrics(self, stats: ExperienceStats) -> dict[str, float]:
        """What MLflow receives after the last row (NaN values are not sent)."""
        exps, classes = self.experiences, self.classes
        i = exps.n_trained - 1
        metrics: dict[str, float] = {"accuracy/stream": stats.stream_accuracy}
        metrics.update({f"accuracy/exp_{j:03d}": exps[i, j] for j in range(exps.n)})
        metrics["accuracy/average_seen"] = exps.average_accuracy(i)
        for j, value in exps.forgetting_by_unit(i).items():
            metrics[f"forgetting/exp_{j:03d}"] = value
        metrics["forgetting/average"] = exps.average_forgetting(i)
        metrics["bwt"] = exps.bwt(i)
        metrics.update({f"accuracy/class_{c:03d}": classes[i, c] for c in classes.seen(i)})
        for c, value in classes.forgetting_by_unit(i).items():
            metrics[f"forgetting/class_{c:03d}"] = value
        metrics["train/loss"] = stats.train_loss
        metrics.update({f"train/loss_{name}": v for name, v in stats.loss_terms.items()})
        metrics["train/iterations"] = stats.train_iterations
        metrics["train/samples_per_s"] = (
            stats.train_samples / stats.train_seconds if stats.train_seconds > 0 else 0.0)
        metrics["time/train_s"] = stats.train_seconds
        metrics["time/eval_s"] = stats.eval_seconds
        return metrics

    def class_forgetting_rows(self) -> list[list[float]]:
        """Per-class forgetting after each experience (NaN before a class can be forgotten)."""
        rows = []
        for i in range(self.classes.n_trained):
            forgetting = self.classes.forgetting_by_unit(i)
            rows.append([forgetting.get(c, math.nan) for c in range(self.classes.n)])
        return rows

    def state_dict(self) -> dict[str, Any]:
        return {"experience_rows": self.experiences.rows, "class_rows": self.classes.rows,
                "introduced": self.classes.introduced, "composition": self.composition}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for row in state["experience_rows"]:
            self.experiences.add_row(row)
        for row in state["class_rows"]:
            self.classes.add_row(row)
        self.classes.introduced = list(state["introduced"])
        self.composition = [list(c) for c in state["composition"]]
