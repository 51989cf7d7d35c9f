"""Buffers split into groups (experiences, classes) that share the capacity evenly."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cl_runner.buffers.base import ExemplarsBuffer, check_size
from cl_runner.buffers.grouping import split_by_label
from cl_runner.buffers.reservoir import ReservoirSamplingBuffer
from cl_runner.checks import BOOL, SettingError

if TYPE_CHECKING:
    from cl_runner.benchmarks.info import StreamInfo
    from cl_runner.data.dataset import ClassificationDataset


class BalancedExemplarsBuffer(ExemplarsBuffer):
    """A buffer made of one sub-buffer per group; ``buffer`` is their concatenation.

    Adaptive: the capacity is split among the groups seen so far. Fixed: every group gets
    ``max_size // total_num_groups``, and seeing more than ``total_num_groups`` groups is an
    error (Avalanche silently lets the total exceed ``max_size``). Lengths go to the group
    keys in ascending order, so the ``+1`` remainder lands on the smallest keys.
    """

    short_name = "balanced"
    #: Constructor argument that sets ``total_num_groups`` (named in error messages).
    groups_arg = "total_num_groups"

    def __init__(
        self, max_size: int, adaptive_size: bool = True, total_num_groups: int | None = None
    ) -> None:
        super().__init__(max_size)
        type(self).check_args(**{"max_size": max_size, "adaptive_size": adaptive_size,
                                 self.groups_arg: total_num_groups})
        self.adaptive_size = adaptive_size
        self.total_num_groups = total_num_groups
        self.buffer_groups: dict[Hashable, ExemplarsBuffer] = {}
        self._joined: tuple[list[ClassificationDataset], ClassificationDataset] | None = None

    @classmethod
    def check_args(cls, max_size: Any = 0, adaptive_size: Any = True, **args: Any) -> None:
        super().check_args(max_size)
        BOOL("adaptive_size", adaptive_size)
        total = args.get(cls.groups_arg)
        if adaptive_size and total is not None:
            raise SettingError(cls.groups_arg, total,
                               "null when adaptive_size is true (it sizes fixed groups only)")
        if not adaptive_size and (isinstance(total, bool) or not isinstance(total, int)
                                  or total < 1):
            raise SettingError(cls.groups_arg, total,
                               "a positive integer when adaptive_size is false")

    @classmethod
    def group_kind(cls, args: Mapping[str, Any]) -> str | None:
        return "all"

    @classmethod
    def check_stream(cls, args: Mapping[str, Any], stream: StreamInfo) -> None:
        super().check_stream(args, stream)
        need, what = cls.group_count(args, stream)
        total = args.get(cls.groups_arg)
        if not args.get("adaptive_size", True) and total < need:
            raise SettingError(cls.groups_arg, total,
                               f"an integer >= {need} (the stream has {need} {what})")

    @property
    def buffer_datasets(self) -> list[ClassificationDataset]:
        """Each group's stored samples, in ``buffer_groups`` order."""
        return [group.buffer for group in self.buffer_groups.values()]

    @property
    def buffer(self) -> ClassificationDataset:
        """All groups joined in ``buffer_groups`` order; rebuilt only when a group changed."""
        from cl_runner.data.dataset import ClassificationDataset

        parts = self.buffer_datasets
        cached = self._joined
        if cached is None or len(cached[0]) != len(parts) or any(
            old is not new for old, new in zip(cached[0], parts, strict=True)
        ):
            self._joined = cached = (parts, ClassificationDataset.concat_all(parts))
        return cached[1]

    @buffer.setter
    def buffer(self, data: ClassificationDataset) -> None:
        raise AttributeError(
            f"{type(self).__name__}.buffer is the join of its groups and cannot be set"
        )

    def group_sizes(self) -> dict[Hashable, int]:
        return {key: len(group.buffer) for key, group in self.buffer_groups.items()}

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

    def new_group(self, capacity: int) -> ExemplarsBuffer:
        """An empty sub-buffer for one group (reservoir sampling unless overridden)."""
        return ReservoirSamplingBuffer(capacity)

    def group_for(self, key: Hashable, capacity: int) -> ExemplarsBuffer:
        """The sub-buffer of ``key``, made with ``capacity`` on first use."""
        group = self.buffer_groups.get(key)
        if group is None:
            group = self.buffer_groups[key] = self.new_group(capacity)
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

    def state_dict(self) -> dict[str, Any]:
        groups = [[key, group.state_dict()] for key, group in self.buffer_groups.items()]
        return {"max_size": self.max_size, "groups": groups}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.max_size = state["max_size"]
        self.buffer_groups = {}
        for key, group_state in state["groups"]:
            self.group_for(key, group_state["max_size"]).load_state_dict(group_state)
        self._joined = None


class ExperienceBalancedBuffer(BalancedExemplarsBuffer):
    """One reservoir per experience (the default policy of Avalanche's ``ReplayPlugin``).

    Group keys count the updates from 0 (the experience id is not read, as in Avalanche);
    old groups shrink by keeping their highest keys, so each stays a uniform sample of its
    experience. With max_size=25: [25] -> [13, 12] -> [9, 8, 8] -> [7, 6, 6, 6] -> 5 x 5.
    """

    short_name = "experience_balanced"
    groups_arg = "num_experiences"

    def __init__(
        self, max_size: int, adaptive_size: bool = True, num_experiences: int | None = None
    ) -> None:
        super().__init__(max_size, adaptive_size, num_experiences)
        self.num_experiences = num_experiences
        self._num_exps = 0

    @classmethod
    def group_kind(cls, args: Mapping[str, Any]) -> str | None:
        return "experience"

    def post_adapt(self, agent: Any, exp: Any) -> None:
        key = self._num_exps
        lengths = self.lengths_by_key([*self.buffer_groups, key])
        group = self.group_for(key, lengths[key])
        group.update_from_dataset(exp.dataset)
        self._num_exps += 1
        self.resize(agent, self.max_size)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "num_exps": self._num_exps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._num_exps = state["num_exps"]


class ClassBalancedBuffer(BalancedExemplarsBuffer):
    """One reservoir per class over every sample of that class seen so far.

    A class that recurs in later experiences feeds its existing reservoir, so each group is a
    uniform sample of all its class's samples (new-instance scenarios stay correct).
    """

    short_name = "class_balanced"
    groups_arg = "total_num_classes"

    def __init__(
        self, max_size: int, adaptive_size: bool = True, total_num_classes: int | None = None
    ) -> None:
        super().__init__(max_size, adaptive_size, total_num_classes)
        self.total_num_classes = total_num_classes
        self.seen_classes: set[int] = set()

    @classmethod
    def group_kind(cls, args: Mapping[str, Any]) -> str | None:
        return "class"

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
            group = self.group_for(label, lengths[label])
            group.resize(strategy, lengths[label])
            group.update_from_dataset(data)
        self.resize(strategy, self.max_size)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seen_classes": sorted(self.seen_classes)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.seen_classes = set(state["seen_classes"])
