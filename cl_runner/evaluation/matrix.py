"""The accuracy matrix of a run and the continual-learning summaries derived from it.

``acc[i, j]`` is the accuracy on test experience ``j`` after training experience ``i``.
Forgetting of ``j`` after ``i`` is ``acc[j, j] - acc[i, j]`` (Avalanche: accuracy right after
training ``j`` minus now), defined for ``j < i``; BWT is minus the mean forgetting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class AccuracyMatrix:
    """Rows filled one per trained experience; unfilled cells are NaN."""

    def __init__(self, n_experiences: int) -> None:
        self.n = n_experiences
        self.rows: list[list[float]] = []

    def add_row(self, accuracies: Sequence[float]) -> None:
        if len(accuracies) != self.n:
            raise ValueError(f"row has {len(accuracies)} accuracies, expected {self.n}")
        if len(self.rows) >= self.n:
            raise ValueError(f"matrix already has all {self.n} rows")
        self.rows.append([float(a) for a in accuracies])

    def __getitem__(self, ij: tuple[int, int]) -> float:
        i, j = ij
        return self.rows[i][j] if i < len(self.rows) else math.nan

    @property
    def n_trained(self) -> int:
        return len(self.rows)

    def average_accuracy(self, i: int | None = None) -> float:
        """Mean accuracy over the experiences seen up to row ``i`` (default: last row)."""
        i = self.n_trained - 1 if i is None else i
        return sum(self.rows[i][: i + 1]) / (i + 1)

    def forgetting(self, i: int | None = None) -> list[float]:
        """Forgetting of experiences ``0..i-1`` after training ``i`` (default: last row)."""
        i = self.n_trained - 1 if i is None else i
        return [self.rows[j][j] - self.rows[i][j] for j in range(i)]

    def average_forgetting(self, i: int | None = None) -> float:
        """Mean forgetting after row ``i``; 0.0 after the first experience."""
        values = self.forgetting(i)
        return sum(values) / len(values) if values else 0.0

    def bwt(self, i: int | None = None) -> float:
        """Backward transfer after row ``i``: minus the average forgetting."""
        return -self.average_forgetting(i)

    def to_rows(self) -> list[list[float]]:
        """The filled rows, padded with NaN to a square matrix."""
        pad = [[math.nan] * self.n for _ in range(self.n - self.n_trained)]
        return [list(r) for r in self.rows] + pad

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[float]]) -> AccuracyMatrix:
        matrix = cls(len(rows[0]) if rows else 0)
        for row in rows:
            if not all(math.isnan(v) for v in row):
                matrix.add_row(row)
        return matrix
