"""Benchmarks as streams of experiences over shared tensor storage.

A class-incremental split orders the classes (drawn from ``seed`` or given), cuts them into
``n_experiences`` equal groups and makes each experience an index view on the stream's one
dataset. ``return_task_id`` gives experience ``i`` task label ``i``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from cl_runner.data.dataset import ClassificationDataset


class BenchmarkConfigError(ValueError):
    """A benchmark argument the split cannot satisfy (one line, names the setting)."""


@dataclass
class Experience:
    """One step of a stream: its data, position, classes and task label (Avalanche's names)."""

    dataset: ClassificationDataset
    current_experience: int
    classes_in_this_experience: list[int]
    task_label: int
    origin_stream: str = "train"

    @property
    def task_labels(self) -> list[int]:
        return [self.task_label]


@dataclass
class Stream(Sequence):
    """An ordered, indexable list of experiences with a name ('train' or 'test')."""

    name: str
    experiences: list[Experience] = field(default_factory=list)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return Stream(self.name, self.experiences[i])
        return self.experiences[i]

    def __len__(self) -> int:
        return len(self.experiences)

    def __iter__(self) -> Iterator[Experience]:
        return iter(self.experiences)


def resolve_class_order(
    n_classes: int, n_experiences: int, seed: int | None, fixed_class_order: Sequence[int] | None
) -> list[int]:
    """The class order of a split, validated: a permutation of all classes cut evenly."""
    if not isinstance(n_experiences, int) or isinstance(n_experiences, bool) or n_experiences < 1:
        raise BenchmarkConfigError(
            f"benchmark.n_experiences={n_experiences!r}: must be an integer from 1 to {n_classes}"
        )
    if fixed_class_order is not None:
        order = [int(c) for c in fixed_class_order]
        unknown = sorted({c for c in order if not 0 <= c < n_classes})
        if unknown:
            raise BenchmarkConfigError(
                f"benchmark.fixed_class_order has unknown classes {unknown}: "
                f"allowed are 0..{n_classes - 1}"
            )
        repeated = sorted({c for c in order if order.count(c) > 1})
        if repeated:
            raise BenchmarkConfigError(
                f"benchmark.fixed_class_order repeats classes {repeated}: each class at most once"
            )
    elif seed is None:
        order = list(range(n_classes))
    else:
        gen = torch.Generator().manual_seed(int(seed))
        order = torch.randperm(n_classes, generator=gen).tolist()
    if len(order) % n_experiences != 0:
        raise BenchmarkConfigError(
            f"benchmark.n_experiences={n_experiences}: does not divide the {len(order)} classes "
            f"(allowed: a divisor of {len(order)})"
        )
    return order


class Benchmark:
    """Train and test streams plus what describes them (Avalanche's attribute names)."""

    def __init__(
        self,
        train_stream: Stream,
        test_stream: Stream,
        *,
        n_classes: int,
        classes_order: Sequence[int],
        return_task_id: bool = False,
        name: str = "benchmark",
    ) -> None:
        self.train_stream = train_stream
        self.test_stream = test_stream
        self.n_classes = n_classes
        self.classes_order = list(classes_order)
        self.return_task_id = return_task_id
        self.name = name

    @property
    def n_experiences(self) -> int:
        return len(self.train_stream)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample (models size their first layer from it)."""
        return tuple(self.train_stream[0].dataset._x.shape[1:])

    @property
    def classes_in_experience(self) -> list[list[int]]:
        return [exp.classes_in_this_experience for exp in self.train_stream]

    @property
    def n_classes_per_exp(self) -> list[int]:
        return [len(c) for c in self.classes_in_experience]

    @property
    def streams(self) -> dict[str, Stream]:
        return {"train": self.train_stream, "test": self.test_stream}

    def to(self, device: torch.device | str) -> Benchmark:
        """Move every stream's storage to ``device`` once; experiences stay views on it."""
        moved: dict[int, ClassificationDataset] = {}
        for stream in (self.train_stream, self.test_stream):
            for exp in stream:
                data = exp.dataset
                key = id(data._x)
                if key not in moved:
                    moved[key] = data._view(None).to(device)
                exp.dataset = moved[key].subset(data.storage_indices.to(device))
        return self


def nc_benchmark(
    train: ClassificationDataset,
    test: ClassificationDataset,
    n_experiences: int,
    *,
    n_classes: int | None = None,
    return_task_id: bool = False,
    seed: int | None = 0,
    fixed_class_order: Sequence[int] | None = None,
    name: str = "benchmark",
) -> Benchmark:
    """Class-incremental split: experience ``i`` holds classes ``order[i*k:(i+1)*k]``.

    With ``return_task_id`` experience ``i`` carries task label ``i`` (task-incremental).
    """
    n_classes = int(n_classes if n_classes is not None else int(train.targets.max()) + 1)
    order = resolve_class_order(n_classes, n_experiences, seed, fixed_class_order)
    per_exp = len(order) // n_experiences
    groups = [sorted(order[i * per_exp : (i + 1) * per_exp]) for i in range(n_experiences)]
    streams = [
        _class_split_stream(name_, data, groups, return_task_id)
        for name_, data in (("train", train), ("test", test))
    ]
    return Benchmark(
        *streams, n_classes=n_classes, classes_order=order, return_task_id=return_task_id,
        name=name,
    )


def _class_split_stream(
    name: str, data: ClassificationDataset, groups: list[list[int]], return_task_id: bool
) -> Stream:
    targets = data.targets
    task_labels = torch.zeros_like(targets)
    positions = []
    for i, classes in enumerate(groups):
        mask = torch.isin(targets, torch.tensor(classes, device=targets.device))
        positions.append(torch.nonzero(mask).flatten())
        if return_task_id:
            task_labels[positions[-1]] = i
    x = data._x if data._idx is None else data._x[data._idx]
    data = ClassificationDataset(
        x, targets, task_labels, transform=data.transform, train_transform=data.train_transform
    )
    return Stream(
        name,
        [
            Experience(data.subset(pos), i, classes, i if return_task_id else 0, name)
            for i, (pos, classes) in enumerate(zip(positions, groups, strict=True))
        ],
    )
