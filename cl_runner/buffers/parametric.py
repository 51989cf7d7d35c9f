"""Buffers grouped by class, task or experience, filled by an exemplar-selection strategy."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.buffers.balanced import BalancedExemplarsBuffer
from cl_runner.buffers.base import ExemplarsBuffer, check_size
from cl_runner.buffers.grouping import split_by_label
from cl_runner.buffers.selection import (
    ExemplarsSelectionStrategy,
    RandomExemplarsSelectionStrategy,
)
from cl_runner.checks import one_of

if TYPE_CHECKING:
    from cl_runner.data.dataset import ClassificationDataset

torch = lazy.load("torch")

GROUPBY_VALUES = (None, "class", "task", "experience")
_GROUPBY = one_of(GROUPBY_VALUES)


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

    short_name = "parametric"
    takes_selection = True

    def __init__(
        self,
        max_size: int,
        groupby: str | None = None,
        selection_strategy: ExemplarsSelectionStrategy | None = None,
    ) -> None:
        self.check_args(max_size=max_size, groupby=groupby)
        super().__init__(max_size)
        self.groupby = groupby
        self.selection_strategy = selection_strategy or RandomExemplarsSelectionStrategy()
        self.seen_groups: set[Hashable] = set()

    @classmethod
    def check_args(cls, max_size: Any = 0, groupby: Any = None, **args: Any) -> None:
        check_size("max_size", max_size)
        _GROUPBY("groupby", groupby)

    @classmethod
    def group_kind(cls, args: Mapping[str, Any]) -> str | None:
        return args.get("groupby") or "all"

    @classmethod
    def name_parts(cls, args: Mapping[str, Any]) -> list[str]:
        return [cls.short_name, cls.group_kind(args)]

    def new_group(self, capacity: int) -> ExemplarsBuffer:
        return _ParametricSingleBuffer(capacity, self.selection_strategy)

    def post_adapt(self, agent: Any, exp: Any) -> None:
        new_groups = self._make_groups(exp)
        if not new_groups:
            return
        lengths = self.lengths_by_key(self.seen_groups | new_groups.keys())
        self.seen_groups |= new_groups.keys()
        for key, data in new_groups.items():
            group = self.group_for(key, lengths[key])
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

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seen_groups": sorted(self.seen_groups)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.seen_groups = set(state["seen_groups"])
