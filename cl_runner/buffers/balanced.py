"""Buffers split into groups (experiences, classes) that share the capacity evenly."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from cl_runner.buffers.base import ExemplarsBuffer, check_size
from cl_runner.buffers.grouping import concat_datasets, split_by_label
from cl_runner.buffers.reservoir import ReservoirSamplingBuffer
from cl_runner.data.dataset import ClassificationDataset


class BalancedExemplarsBuffer(ExemplarsBuffer):
    """A buffer made of one sub-buffer per group; ``buffer`` is their concatenation.

    Adaptive: the capacity is split among the groups seen so far. Fixed: every group gets
    ``max_size // total_num_groups``, and seeing more than ``total_num_groups`` groups is an
    error (Avalanche silently lets the total exceed ``max_size``). Lengths go to the group
    keys in ascending order, so the ``+1`` remainder lands on the smallest keys.
    """

    #: Constructor argument that sets ``total_num_groups`` (named in error messages).
    groups_arg = "total_num_groups"

    def __init__(
        self, max_size: int, adaptive_size: bool = True, total_num_groups: int | None = None
    ) -> None:
        super().__init__(max_size)
        name = type(self).__name__
        if adaptive_size and total_num_groups is not None:
            raise ValueError(
                f"{name}: {self.groups_arg}={total_num_groups!r} is only used with "
                f"adaptive_size=False; leave it None for adaptive sizing"
            )
        if not adaptive_size and (
            isinstance(total_num_groups, bool)
            or not isinstance(total_num_groups, int)
            or total_num_groups < 1
        ):
            raise ValueError(
                f"{name}: adaptive_size=False needs {self.groups_arg} to be a positive "
                f"integer, got {total_num_groups!r}"
            )
        self.adaptive_size = adaptive_size
        self.total_num_groups = total_num_groups
        self.buffer_groups: dict[Hashable, ExemplarsBuffer] = {}
        self._joined: tuple[list[ClassificationDataset], ClassificationDataset] | None = None

    @property
    def buffer_datasets(self) -> list[ClassificationDataset]:
        """Each group's stored samples, in ``buffer_groups`` order."""
        return [group.buffer for group in self.buffer_groups.values()]

    @property
    def buffer(self) -> ClassificationDataset:
        """All groups joined in ``buffer_groups`` order; rebuilt only when a group changed."""
        parts = self.buffer_datasets
        cached = self._joined
        if cached is None or len(cached[0]) != len(parts) or any(
            old is not new for old, new in zip(cached[0], parts, strict=True)
        ):
            self._joined = cached = (parts, concat_datasets(parts))
        return cached[1]

    def get_group_lengths(self, num_groups: int) -> list[int]:
        """Capacity of each of ``num_groups`` groups (first groups get the remainder)."""
        if not self.adaptive_size:
            if num_groups > self.total_num_groups:
                raise ValueError(
                    f"{type(self).__name__}: {num_groups} groups but {self.groups_arg}="
                    f"{self.total_num_groups}; fixed-size groups would exceed max_size="
                    f"{self.max_size} (raise {self.groups_arg} or use adaptive_size=True)"
                )
            return [self.max_size // self.total_num_groups] * num_groups
        if num_groups == 0:
            return []
        share, extra = divmod(self.max_size, num_groups)
        return [share + 1] * extra + [share] * (num_groups - extra)

    def group_for(
        self, key: Hashable, make: Callable[..., ExemplarsBuffer], *args: Any
    ) -> ExemplarsBuffer:
        """The sub-buffer of ``key``, ``make(*args)`` on first use only (``setdefault`` would
        build one per group on every update)."""
        group = self.buffer_groups.get(key)
        if group is None:
            group = self.buffer_groups[key] = make(*args)
        return group

    def lengths_by_key(self, keys: Iterable[Hashable]) -> dict[Hashable, int]:
        """Group key -> capacity, handing lengths out in ascending key order."""
        ordered = sorted(keys)
        return dict(zip(ordered, self.get_group_lengths(len(ordered)), strict=True))

    def resize(self, strategy: Any, new_size: int) -> None:
        self.max_size = check_size("new_size", new_size)
        for key, length in self.lengths_by_key(self.buffer_groups).items():
            group = self.buffer_groups[key]
            if group.max_size != length:  # most groups keep their share when one is added
                group.resize(strategy, length)


class ExperienceBalancedBuffer(BalancedExemplarsBuffer):
    """One reservoir per experience (the default policy of Avalanche's ``ReplayPlugin``).

    Group keys count the updates from 0 (the experience id is not read, as in Avalanche);
    old groups shrink by keeping their highest keys, so each stays a uniform sample of its
    experience. With max_size=25: [25] -> [13, 12] -> [9, 8, 8] -> [7, 6, 6, 6] -> 5 x 5.
    """

    groups_arg = "num_experiences"

    def __init__(
        self, max_size: int, adaptive_size: bool = True, num_experiences: int | None = None
    ) -> None:
        super().__init__(max_size, adaptive_size, num_experiences)
        self.num_experiences = num_experiences
        self._num_exps = 0

    def post_adapt(self, agent: Any, exp: Any) -> None:
        key = self._num_exps
        lengths = self.lengths_by_key([*self.buffer_groups, key])
        group = ReservoirSamplingBuffer(lengths[key])
        group.update_from_dataset(exp.dataset)
        self._num_exps += 1
        self.buffer_groups[key] = group
        self.resize(agent, self.max_size)


class ClassBalancedBuffer(BalancedExemplarsBuffer):
    """One reservoir per class over every sample of that class seen so far.

    A class that recurs in later experiences feeds its existing reservoir, so each group is a
    uniform sample of all its class's samples (new-instance scenarios stay correct).
    """

    groups_arg = "total_num_classes"

    def __init__(
        self, max_size: int, adaptive_size: bool = True, total_num_classes: int | None = None
    ) -> None:
        super().__init__(max_size, adaptive_size, total_num_classes)
        self.total_num_classes = total_num_classes
        self.seen_classes: set[int] = set()

    def post_adapt(self, agent: Any, exp: Any) -> None:
        self.update_from_dataset(exp.dataset, agent)

    def update_from_dataset(self, new_data: ClassificationDataset, strategy: Any = None) -> None:
        """Add ``new_data`` class by class; ``strategy`` is optional (standalone use)."""
        by_class = split_by_label(new_data, new_data.targets)
        if not by_class:
            return
        lengths = self.lengths_by_key(self.seen_classes | by_class.keys())
        self.seen_classes |= by_class.keys()
        for label, data in by_class.items():
            group = self.group_for(label, ReservoirSamplingBuffer, lengths[label])
            group.resize(strategy, lengths[label])
            group.update_from_dataset(data)
        self.resize(strategy, self.max_size)
