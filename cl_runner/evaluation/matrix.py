"""The accuracy matrix of a run and the continual-learning summaries derived from it.

``acc[i, j]`` is the accuracy on unit ``j`` after training experience ``i``; a unit is a test
experience (the classic matrix) or a class. Unit ``j`` is *seen* from the row of the
experience that introduced it on (experience ``j`` itself, or the first experience with
class ``j``). Its forgetting after row ``i`` is its accuracy right after it was introduced
minus its accuracy now (Avalanche's definition), for units introduced before ``i``; BWT is
minus the mean forgetting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class AccuracyMatrix:
    """Rows filled one per trained experience; unfilled cells are NaN.

    ``introduced[j]``: the experience that introduces unit ``j`` (default: ``j``, for test
    experiences); None for a unit not introduced yet.
    """

    def __init__(self, n_units: int, introduced: Sequence[int | None] | None = None) -> None:
        self.n = n_units
        self.introduced: list[int | None] = (
            list(range(n_units)) if introduced is None else list(introduced))
        self.rows: list[list[float]] = []

    def add_row(self, accuracies: Sequence[float]) -> None:
        if len(accuracies) != self.n:
            raise ValueError(f"row has {len(accuracies)} accuracies, expected {self.n}")
        self.rows.append([float(a) for a in accuracies])

    def __getitem__(self, ij: tuple[int, int]) -> float:
        i, j = ij
        return self.rows[i][j] if i < len(self.rows) else math.nan

    @property
    def n_trained(self) -> int:
        return len(self.rows)

    def seen(self, i: int) -> list[int]:
        """Units introduced up to row ``i``."""
        return [j for j, k in enumerate(self.introduced) if k is not None and k <= i]

    def _last(self, i: int | None) -> int:
        return self.n_trained - 1 if i is None else i

    def average_accuracy(self, i: int | None = None) -> float:
        """Mean accuracy over the units seen up to row ``i`` (default: last row)."""
        i = self._last(i)
        seen = self.seen(i)
        return sum(self.rows[i][j] for j in seen) / len(seen) if seen else math.nan

    def forgetting_by_unit(self, i: int | None = None) -> dict[int, float]:
        """Unit -> forgetting after row ``i``, for units introduced before ``i``."""
        i = self._last(i)
        return {j: self.rows[k][j] - self.rows[i][j] for j, k in enumerate(self.introduced)
                if k is not None and k < i}

    def forgetting(self, i: int | None = None) -> list[float]:
        """Forgetting of the units introduced before row ``i`` (default: last row)."""
        return list(self.forgetting_by_unit(i).values())

    def average_forgetting(self, i: int | None = None) -> float:
        """Mean forgetting after row ``i``; 0.0 after the first experience."""
        values = self.forgetting(i)
        return sum(values) / len(values) if values else 0.0

    def bwt(self, i: int | None = None) -> float:
        """Backward transfer after row ``i``: minus the average forgetting."""
        return -self.average_forgetting(i)

    def to_rows(self) -> list[list[float]]:
        """The filled rows, padded with NaN to one row per unit (the square classic matrix)."""
        pad = [[math.nan] * self.n for _ in range(max(0, self.n - self.n_trained))]
        return [list(r) for r in self.rows] + pad

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[float]]) -> AccuracyMatrix:
        matrix = cls(len(rows[0]) if rows else 0)
        for row in rows:
            if not all(math.isnan(v) for v in row):
                matrix.add_row(row)
        return matrix
