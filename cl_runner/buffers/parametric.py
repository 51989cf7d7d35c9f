"""Buffers grouped by class, task or experience, filled by an exemplar-selection strategy."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import torch

from cl_runner.buffers.balanced import BalancedExemplarsBuffer
from cl_runner.buffers.base import ExemplarsBuffer, check_size
from cl_runner.buffers.grouping import split_by_label
from cl_runner.buffers.selection import (
    ExemplarsSelectionStrategy,
    RandomExemplarsSelectionStrategy,
)
from cl_runner.data.dataset import ClassificationDataset

GROUPBY_VALUES = (None, "class", "task", "experience")


class _ParametricSingleBuffer(ExemplarsBuffer):
    """One group: its samples stored best-ranked first, so shrinking keeps a prefix."""

    def __init__(self, max_size: int, selection_strategy: ExemplarsSelectionStrategy) -> None:
        super().__init__(max_size)
        self.selection_strategy = selection_strategy

    def update_from_dataset(self, strategy: Any, new_data: ClassificationDataset) -> None:
        """Rank old + new samples once and keep the best ``max_size``."""
        content = self.buffer.concat(new_data)
        best = self.selection_strategy.select(strategy, content, self.max_size)
        self.buffer = content.subset(best)

    def resize(self, strategy: Any, new_size: int) -> None:
        """Keep the ``new_size`` best-ranked samples (no new ranking)."""
        self.max_size = check_size("new_size", new_size)
        if len(self.buffer) > new_size:
            self.buffer = self.buffer.subset(torch.arange(new_size))


class ParametricBuffer(BalancedExemplarsBuffer):
    """Capacity split evenly among the groups seen so far; each group keeps its best exemplars.

    ``groupby``: ``None`` (one pool, key 0), ``"class"`` (target), ``"task"`` (task label) or
    ``"experience"`` (``exp.current_experience``, 0-based). Per update the selection strategy
    ranks each group that received data exactly once (old exemplars + new samples); groups
    that only shrink keep the prefix of their stored ranking. Remainder slots go to the
    smallest group keys.
    """

    def __init__(
        self,
        max_size: int,
        groupby: str | None = None,
        selection_strategy: ExemplarsSelectionStrategy | None = None,
    ) -> None:
        if groupby not in GROUPBY_VALUES:
            raise ValueError(
                f"ParametricBuffer: groupby={groupby!r} is not supported; allowed values: "
                f"{', '.join(repr(v) for v in GROUPBY_VALUES)}"
            )
        super().__init__(max_size)
        self.groupby = groupby
        self.selection_strategy = selection_strategy or RandomExemplarsSelectionStrategy()
        self.seen_groups: set[Hashable] = set()

    def post_adapt(self, agent: Any, exp: Any) -> None:
        new_groups = self._make_groups(exp)
        if not new_groups:
            return
        lengths = self.lengths_by_key(self.seen_groups | new_groups.keys())
        self.seen_groups |= new_groups.keys()
        for key, data in new_groups.items():
            group = self.group_for(
                key, _ParametricSingleBuffer, lengths[key], self.selection_strategy
            )
            group.max_size = lengths[key]
            group.update_from_dataset(agent, data)
        self.resize(agent, self.max_size)

    def _make_groups(self, exp: Any) -> dict[Hashable, ClassificationDataset]:
        data = exp.dataset
        if len(data) == 0:
            return {}
        if self.groupby == "class":
            return split_by_label(data, data.targets)
        if self.groupby == "task":
            return split_by_label(data, data.targets_task_labels)
        if self.groupby == "experience":
            return {int(exp.current_experience): data}
        return {0: data}
