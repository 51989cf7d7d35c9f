"""Balanced and replay data loaders with Avalanche's names and semantics.

Every loader lays its groups end to end in one dataset and draws index batches for all of
them at once (``GroupBatchSampler``), so a mini-batch is one ``gather`` on tensor storage.
Two ways to run a plan:

- in process (``ClassificationDataset`` groups, no workers, no pinning, no ``collate_fn``):
  the loader gathers each index batch itself, with no torch DataLoader in between;
- otherwise ONE ``torch.utils.data.DataLoader`` with the plan as its ``batch_sampler``, so
  workers, pinning and collation apply once to the joint batch. Tensor datasets are still
  fetched a batch at a time (``__getitems__``); a user ``collate_fn`` and generic datasets get
  per-sample fetches and collation, as torch would do them.

The joint batch of ``ClassificationDataset`` groups is transformed with the first group's
transforms (the current data's, for replay).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, Subset

from cl_runner.data.dataset import ClassificationDataset
from cl_runner.data.sampling import GroupBatchSampler, split_batch_size

_REFUSAL_HINTS = {
    "collate_mbatches": "deprecated in Avalanche, use collate_fn",
    "sampler": "the loader draws its own balanced batches",
    "batch_sampler": "the loader draws its own balanced batches",
}


@dataclass(frozen=True)
class LoaderOptions:
    """The torch DataLoader settings every loader honours; any other keyword is refused.

    ``timeout`` and ``worker_init_fn`` only matter with workers, exactly as in torch.
    """

    shuffle: bool = False
    drop_last: bool = False
    generator: torch.Generator | None = None
    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    prefetch_factor: int | None = None
    collate_fn: Callable[[list[Any]], Any] | None = None
    timeout: float = 0
    worker_init_fn: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        # torch checks these only when it builds a DataLoader; the in-process path must too.
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.timeout < 0:
            raise ValueError(f"timeout must be >= 0, got {self.timeout}")
        if self.num_workers == 0 and (self.persistent_workers or self.prefetch_factor is not None):
            raise ValueError("persistent_workers and prefetch_factor need num_workers > 0")

    @classmethod
    def from_kwargs(cls, owner: str, kwargs: Mapping[str, Any]) -> LoaderOptions:
        """Options from a loader's ``**kwargs``; an unknown name is an error, never dropped."""
        allowed = [f.name for f in fields(cls)]
        for name in kwargs:
            if name not in allowed:
                hint = f" ({_REFUSAL_HINTS[name]})" if name in _REFUSAL_HINTS else ""
                raise ValueError(
                    f"{owner}: unsupported argument {name!r}{hint}; allowed: {', '.join(allowed)}"
                )
        return cls(**kwargs)

    @property
    def in_process(self) -> bool:
        """Whether tensor batches can be gathered directly, without a torch DataLoader."""
        return self.num_workers == 0 and not self.pin_memory and self.collate_fn is None


def split_by_task(data: Dataset) -> dict[int, Dataset]:
    """Task label -> subset with that label, ascending (needs ``targets_task_labels``)."""
    if isinstance(data, ClassificationDataset):
        return data.task_set
    labels = getattr(data, "targets_task_labels", None)
    if labels is None:
        raise ValueError(
            f"cannot split {type(data).__name__} by task: it has no targets_task_labels"
        )
    labels = torch.as_tensor(labels)
    return {
        int(t): Subset(data, torch.nonzero(labels == t).flatten().tolist()) for t in labels.unique()
    }


def check_distributed_sampling(owner: str, value: Any) -> None:
    """Avalanche's ``distributed_sampling``: it only acts in an initialised
    ``torch.distributed`` process group, which these loaders do not support."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: distributed_sampling must be True or False, got {value!r}")
    if value and torch.distributed.is_available() and torch.distributed.is_initialized():
        raise ValueError(
            f"{owner}: distributed sampling is not supported (a torch.distributed process group "
            "is initialised); pass distributed_sampling=False to load this process's data"
        )


def _check_batch_size(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _concatenate(datasets: Sequence[Dataset]) -> Dataset:
    """One dataset for all groups: an index-only view when they share tensor storage."""
    if all(isinstance(d, ClassificationDataset) for d in datasets):
        return ClassificationDataset.concat_all(datasets)
    return ConcatDataset(datasets)


class _SampleView(Dataset):
    """Per-sample access (what generic datasets and a user ``collate_fn`` expect).

    With ``memory_start`` set, each sample gains a last field: whether its position lies in the
    memory part of the concatenation (issue #1198).
    """

    def __init__(self, dataset: Dataset, memory_start: int | None) -> None:
        self.dataset, self.memory_start = dataset, memory_start

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:
        sample = self.dataset[i]
        if self.memory_start is None:
            return sample
        return (*sample, torch.tensor(i >= self.memory_start))


class _BatchView(_SampleView):
    """Batched access to a ``ClassificationDataset``: one gather per index batch."""

    dataset: ClassificationDataset

    def fetch(self, positions: Sequence[int] | Tensor) -> tuple[Tensor, ...]:
        idx = torch.as_tensor(positions, dtype=torch.long, device=self.dataset.device)
        batch = self.dataset.gather(idx)
        return batch if self.memory_start is None else (*batch, idx >= self.memory_start)

    __getitems__ = fetch  # torch's DataLoader fetches whole batches through this name


class _IndexLists(Sampler[list[int]]):
    """The plan as int lists: cheap to send to workers, and what generic datasets index with."""

    def __init__(self, plan: GroupBatchSampler) -> None:
        self.plan = plan

    def __len__(self) -> int:
        return len(self.plan)

    def __iter__(self) -> Iterator[list[int]]:
        return (idx.tolist() for idx in self.plan)


def _unchanged(batch: Any) -> Any:
    """Collation for batches that come out of one gather already collated."""
    return batch


def _worker_seed_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """A twin of ``generator`` for torch's per-epoch worker seed draw.

    torch draws that seed from the loader's generator; sharing the user's would shift the
    batch plan, so plans would differ with and without workers.
    """
    if generator is None:
        return None
    return torch.Generator().manual_seed(generator.initial_seed())


class _MultiGroupLoader:
    """Iterates one batch plan over several groups (Avalanche's MultiDatasetDataLoader).

    ``terminators``: groups whose longest pass sets the epoch length (default: all).
    ``memory_start``: if set, batches carry an ``is_memory`` mask for positions past it.
    """

    def __init__(
        self,
        datasets: Sequence[Dataset],
        batch_sizes: Sequence[int],
        kwargs: Mapping[str, Any],
        *,
        terminators: Sequence[int] | None = None,
        oversample: bool = False,
        never_ending: bool = False,
        memory_start: int | None = None,
    ) -> None:
        self.options = opts = LoaderOptions.from_kwargs(type(self).__name__, kwargs)
        self.datasets, self.batch_sizes = list(datasets), list(batch_sizes)
        self.dataset = _concatenate(self.datasets)
        tensor_data = isinstance(self.dataset, ClassificationDataset)
        in_process = tensor_data and opts.in_process
        self.batch_sampler = GroupBatchSampler(
            [len(d) for d in self.datasets],
            self.batch_sizes,
            terminators=terminators,
            oversample=oversample,
            never_ending=never_ending,
            shuffle=opts.shuffle,
            drop_last=opts.drop_last,
            generator=opts.generator,
            device=self.dataset.device if in_process else "cpu",
        )
        batched = tensor_data and opts.collate_fn is None
        view_type = _BatchView if batched else _SampleView
        self._view = view_type(self.dataset, memory_start)
        self._torch_loader = None if in_process else self._make_torch_loader(batched)

    def _make_torch_loader(self, batched: bool) -> DataLoader:
        """ONE torch DataLoader for the joint batches (workers, pinning, collation)."""
        opts = self.options
        return DataLoader(
            self._view,
            batch_sampler=_IndexLists(self.batch_sampler),
            collate_fn=_unchanged if batched else opts.collate_fn,
            num_workers=opts.num_workers,
            pin_memory=opts.pin_memory,
            timeout=opts.timeout,
            worker_init_fn=opts.worker_init_fn,
            generator=_worker_seed_generator(opts.generator),
            prefetch_factor=opts.prefetch_factor,
            persistent_workers=opts.persistent_workers,
        )

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[Any]:
        if self._torch_loader is not None:
            return iter(self._torch_loader)
        return map(self._view.fetch, self.batch_sampler)


class GroupBalancedDataLoader(_MultiGroupLoader):
    """Mini-batches with an equal share from every group (tasks, classes, experiences, ...).

    ``batch_size`` is the TOTAL: each group gets ``batch_size // G`` samples, the first
    ``batch_size % G`` groups one more. The epoch lasts as long as the group with the most
    batches; smaller groups drop out when exhausted unless ``oversample_small_groups``.
    Positional order as in Avalanche: ``datasets, oversample_small_groups, batch_size,
    distributed_sampling``.
    """

    def __init__(
        self,
        datasets: Sequence[Dataset],
        oversample_small_groups: bool = False,
        batch_size: int = 32,
        distributed_sampling: bool = True,
        **kwargs: Any,
    ) -> None:
        check_distributed_sampling(type(self).__name__, distributed_sampling)
        _check_batch_size("batch_size", batch_size)
        datasets = list(datasets)
        sizes = split_batch_size(batch_size, len(datasets), "batch_size", "groups")
        super().__init__(datasets, sizes, kwargs, oversample=oversample_small_groups)


class TaskBalancedDataLoader(GroupBalancedDataLoader):
    """GroupBalancedDataLoader over the task-label subsets of ``data`` (ascending labels).

    Positional order as in Avalanche: ``data, batch_size, oversample_small_groups,
    distributed_sampling`` (``batch_size`` comes second here, unlike GroupBalancedDataLoader).
    """

    def __init__(
        self,
        data: Dataset,
        batch_size: int = 32,
        oversample_small_groups: bool = False,
        distributed_sampling: bool = True,
        **kwargs: Any,
    ) -> None:
        if "oversample_small_tasks" in kwargs:
            raise ValueError(
                "TaskBalancedDataLoader: oversample_small_tasks was renamed oversample_small_groups"
            )
        groups = list(split_by_task(data).values())
        super().__init__(groups, oversample_small_groups, batch_size, distributed_sampling,
                         **kwargs)


class GroupBalancedInfiniteDataLoader(_MultiGroupLoader):
    """Never-ending loader: ``batch_size`` samples PER group every step, all groups cycling."""

    def __init__(
        self,
        datasets: Sequence[Dataset],
        batch_size: int = 32,
        distributed_sampling: bool = True,
        **kwargs: Any,
    ) -> None:
        check_distributed_sampling(type(self).__name__, distributed_sampling)
        _check_batch_size("batch_size", batch_size)
        datasets = list(datasets)
        sizes = [batch_size] * len(datasets)
        super().__init__(datasets, sizes, kwargs, never_ending=True)


class ReplayDataLoader(_MultiGroupLoader):
    """Batches of ``batch_size`` current samples plus ``batch_size_mem`` memory samples.

    The epoch length is that of the current data alone (Avalanche PR #1287). Memory restarts
    with a fresh permutation when exhausted if ``oversample_small_tasks``, otherwise it stops
    contributing. ``batch_size`` may be a dict task label -> size (one current group per
    task); ``task_balanced_dataloader`` splits the memory share over its task labels. Without
    memory (``None`` or empty) this is a plain loader over ``data``. ``return_memory_mask``
    (ours, keyword-only) appends a bool ``is_memory`` tensor to every batch:
    ``x, y, t, is_memory``.
    """

    def __init__(
        self,
        data: Dataset,
        memory: Dataset | None = None,
        oversample_small_tasks: bool = False,
        batch_size: int | Mapping[int, int] = 32,
        batch_size_mem: int = 32,
        task_balanced_dataloader: bool = False,
        distributed_sampling: bool = True,
        *,
        return_memory_mask: bool = False,
        **kwargs: Any,
    ) -> None:
        check_distributed_sampling(type(self).__name__, distributed_sampling)
        current, current_sizes = _current_groups(data, batch_size)
        memory_groups, memory_sizes = _memory_groups(
            memory, batch_size_mem, task_balanced_dataloader
        )
        n_current = sum(len(g) for g in current)
        super().__init__(
            current + memory_groups,
            current_sizes + memory_sizes,
            kwargs,
            terminators=range(len(current)),
            oversample=oversample_small_tasks,
            memory_start=n_current if return_memory_mask else None,
        )


def _current_groups(
    data: Dataset, batch_size: int | Mapping[int, int]
) -> tuple[list[Dataset], list[int]]:
    """The current data as one group, or one group per task when sizes are given per task."""
    if not isinstance(batch_size, Mapping):
        _check_batch_size("batch_size", batch_size)
        return [data], [batch_size]
    tasks = split_by_task(data)
    missing = sorted(set(tasks) - set(batch_size))
    if missing:
        raise ValueError(f"batch_size has no entry for task(s) {missing} of the current data")
    for task in tasks:
        _check_batch_size(f"batch_size[{task}]", batch_size[task])
    return list(tasks.values()), [batch_size[task] for task in tasks]


def _memory_groups(
    memory: Dataset | None, batch_size_mem: int, task_balanced: bool
) -> tuple[list[Dataset], list[int]]:
    """The memory as one group, or split by task label with the share balanced over tasks."""
    _check_batch_size("batch_size_mem", batch_size_mem)
    if memory is None or len(memory) == 0:
        return [], []
    if not task_balanced:
        return [memory], [batch_size_mem]
    tasks = split_by_task(memory)
    sizes = split_batch_size(batch_size_mem, len(tasks), "batch_size_mem", "memory tasks")
    return list(tasks.values()), sizes


class TensorDataLoader(_MultiGroupLoader):
    """Our plain single-dataset loader (evaluation, training without replay).

    Batches as torch's DataLoader forms them (sizes, order without shuffling, ``drop_last``),
    but a tensor dataset is gathered a batch at a time with no per-sample Python.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> None:
        _check_batch_size("batch_size", batch_size)
        options = dict(kwargs, shuffle=shuffle, drop_last=drop_last, generator=generator)
        super().__init__([dataset], [batch_size], options)
