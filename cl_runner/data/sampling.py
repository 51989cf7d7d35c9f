"""Balanced batch index plans drawn with torch ops.

Several groups (tasks, classes, current data and memory) are laid end to end, as in their
concatenated dataset; every step takes the next slice of each group's permutation and joins
them in group order. Per step the Python cost is one slice per group, never one per sample.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Sampler

#: ``len()`` of a never-ending plan (Avalanche's value), so progress bars and ``zip`` still work.
NEVER_ENDING_LENGTH = 10**10


def split_batch_size(
    total: int, n_groups: int, name: str = "batch_size", groups: str = "groups"
) -> list[int]:
    """Share ``total`` among groups: ``total // n`` each, the first ``total % n`` get one more.

    32 over 5 groups -> [7, 7, 6, 6, 6], as Avalanche's GroupBalancedDataLoader. A total
    smaller than the number of groups gives every group one sample, with a warning (Avalanche
    refuses it, but the seed tutorial asks for batch_size=4 over 5 experiences). ``name`` and
    ``groups`` only word the messages for the caller's setting.
    """
    if n_groups < 1:
        raise ValueError(f"a balanced batch needs at least one of the {groups}, got none")
    if total < n_groups:
        warnings.warn(
            f"{name}={total} is smaller than the number of {groups} ({n_groups}): each batch "
            f"takes one sample per group, {n_groups} in all", stacklevel=3,
        )
        total = n_groups
    base, extra = divmod(total, n_groups)
    return [base + 1 if i < extra else base for i in range(n_groups)]


def num_batches(n_samples: int, batch_size: int, drop_last: bool) -> int:
    """Batches one pass over ``n_samples`` yields, as torch's BatchSampler counts them."""
    return n_samples // batch_size if drop_last else -(-n_samples // batch_size)


class _GroupCursor:
    """Walks one group's permutation in slices of its batch size; restarts on demand."""

    def __init__(
        self, offset: int, length: int, batch_size: int, n_batches: int, plan: GroupBatchSampler
    ) -> None:
        self.offset, self.length = offset, length
        self.batch_size, self.n_batches = batch_size, n_batches
        self._plan = plan
        self.new_pass()

    @property
    def exhausted(self) -> bool:
        return self._taken == self.n_batches

    def new_pass(self) -> None:
        """A fresh order over the group (new permutation when shuffling), moved once."""
        plan = self._plan
        if plan.shuffle:
            order = torch.randperm(self.length, generator=plan.generator)
        else:
            order = torch.arange(self.length)
        self._order = (order + self.offset).to(plan.device)
        self._taken = 0

    def take(self) -> Tensor:
        start = self._taken * self.batch_size
        self._taken += 1
        return self._order[start : start + self.batch_size]


class GroupBatchSampler(Sampler[Tensor]):
    """Index batches over groups laid end to end, ``batch_sizes[i]`` samples from group ``i``.

    An epoch lasts as many steps as the group among ``terminators`` (default: all groups)
    with the most batches. A group that runs out earlier restarts with a fresh permutation if
    ``oversample``, otherwise it stops contributing. Groups without a single batch (empty, or
    smaller than their batch with ``drop_last``) are left out. ``never_ending`` cycles every
    group forever. Batches are LongTensors of positions in the concatenation, on ``device``.
    """

    def __init__(
        self,
        group_lengths: Sequence[int],
        batch_sizes: Sequence[int],
        *,
        terminators: Sequence[int] | None = None,
        oversample: bool = False,
        never_ending: bool = False,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        if len(group_lengths) != len(batch_sizes):
            raise ValueError("one batch size per group is needed")
        if any(b < 1 for b in batch_sizes):
            raise ValueError(f"batch sizes must be positive, got {list(batch_sizes)}")
        self.group_lengths, self.batch_sizes = list(group_lengths), list(batch_sizes)
        self.shuffle, self.drop_last, self.generator = shuffle, drop_last, generator
        self.oversample, self.never_ending = oversample or never_ending, never_ending
        self.device = torch.device(device)
        pairs = zip(self.group_lengths, self.batch_sizes, strict=True)
        self.group_batches = [num_batches(n, b, drop_last) for n, b in pairs]
        terminators = range(len(self.group_lengths)) if terminators is None else terminators
        self._epoch_length = max((self.group_batches[i] for i in terminators), default=0)
        if never_ending and not any(self.group_batches):
            raise ValueError("a never-ending loader needs at least one group with a full batch")

    def __len__(self) -> int:
        return NEVER_ENDING_LENGTH if self.never_ending else self._epoch_length

    def _cursors(self) -> list[_GroupCursor]:
        """One started cursor per group that has batches, in group order."""
        offsets = [0, *itertools.accumulate(self.group_lengths)][:-1]
        specs = zip(offsets, self.group_lengths, self.batch_sizes, self.group_batches, strict=True)
        return [_GroupCursor(o, n, b, k, self) for o, n, b, k in specs if k > 0]

    def __iter__(self) -> Iterator[Tensor]:
        cursors = self._cursors()
        steps = itertools.count() if self.never_ending else range(self._epoch_length)
        for _ in steps:
            parts = []
            for cursor in cursors:
                # The terminating group never runs out within the epoch: only smaller groups
                # restart (oversample) or fall silent here.
                if cursor.exhausted and self.oversample:
                    cursor.new_pass()
                if not cursor.exhausted:
                    parts.append(cursor.take())
            yield parts[0] if len(parts) == 1 else torch.cat(parts)
