"""Benchmarks as streams of experiences over shared tensor storage.

A class-incremental split orders the classes (drawn from ``seed`` or given), cuts them into
``n_experiences`` equal groups and makes each experience an index view on the stream's one
dataset. ``return_task_id`` gives experience ``i`` task label ``i``.

Every benchmark constructor declares, without loading data or torch, what its arguments give:
``check_args(**args)`` raises ``SettingError`` for a split that cannot be made, and
``info(**args)`` returns the ``StreamInfo`` (classes, experiences, tasks, input shape) that
other components' settings are checked against (see ``declared``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import lazy_loader as lazy

from cl_runner.benchmarks.info import StreamInfo
from cl_runner.checks import POSITIVE_INT, Rule, SettingError, is_int

if TYPE_CHECKING:
    from cl_runner.data.dataset import ClassificationDataset

torch = lazy.load("torch")

F = TypeVar("F", bound=Callable[..., Any])
OPTIONAL_SEED = Rule(lambda v: v is None or (is_int(v) and 0 <= v < 2**63),
                     "null or an integer from 0 to 2**63-1")


def declared(info: Callable[..., StreamInfo], check_args: Callable[..., None]) -> Callable[[F], F]:
    """Attach a benchmark constructor's declarations: ``info`` and ``check_args`` take the
    constructor's keyword arguments (those not given take the constructor's defaults)."""

    def attach(constructor: F) -> F:
        constructor.info = info  # type: ignore[attr-defined]
        constructor.check_args = check_args  # type: ignore[attr-defined]
        return constructor

    return attach


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


def check_class_split(
    n_classes: int, n_experiences: Any, fixed_class_order: Any = None, seed: Any = None
) -> int:
    """Raise ``SettingError`` unless the classes cut evenly into ``n_experiences``; return how
    many classes the split uses."""
    OPTIONAL_SEED("seed", seed)
    POSITIVE_INT("n_experiences", n_experiences)
    classes = n_classes
    if fixed_class_order is not None:
        order = list(fixed_class_order)
        if not order or not all(is_int(c) for c in order):
            raise SettingError("fixed_class_order", order,
                               "null or a non-empty list of class ids")
        unknown = sorted({c for c in order if not 0 <= c < n_classes})
        if unknown:
            raise SettingError("fixed_class_order", order,
                               f"class ids 0..{n_classes - 1} (unknown: {unknown})")
        if len(set(order)) != len(order):
            raise SettingError("fixed_class_order", order, "each class at most once")
        classes = len(order)
    if n_experiences > classes or classes % n_experiences:
        divisors = [d for d in range(1, classes + 1) if classes % d == 0]
        raise SettingError("n_experiences", n_experiences,
                           f"a divisor of the {classes} classes: {divisors}")
    return classes


def class_split_info(
    n_classes: int, input_shape: tuple[int, ...], n_experiences: int,
    return_task_id: bool = False, fixed_class_order: Sequence[int] | None = None,
) -> StreamInfo:
    """What a class-incremental split of ``n_classes`` gives (arguments already checked)."""
    return StreamInfo(
        n_classes=n_classes, n_experiences=n_experiences,
        n_tasks=n_experiences if return_task_id else 1, input_shape=input_shape,
    )


def class_order(
    n_classes: int, seed: int | None, fixed_class_order: Sequence[int] | None
) -> list[int]:
    """The class order of a split: the given one, else ``torch.randperm`` from ``seed``."""
    if fixed_class_order is not None:
        return [int(c) for c in fixed_class_order]
    if seed is None:
        return list(range(n_classes))
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n_classes, generator=gen).tolist()


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
        return self.train_stream[0].dataset.input_shape

    @property
    def info(self) -> StreamInfo:
        tasks = {exp.task_label for exp in self.train_stream}
        return StreamInfo(self.n_classes, self.n_experiences, len(tasks), self.input_shape)

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
        moved: list[tuple[ClassificationDataset, ClassificationDataset]] = []
        for stream in (self.train_stream, self.test_stream):
            for exp in stream:
                data = exp.dataset
                root = next((new for old, new in moved if old.shares_storage(data)), None)
                if root is None:
                    root = data.storage_view().to(device)
                    moved.append((data, root))
                exp.dataset = root.subset(data.storage_indices.to(device))
                exp.dataset.transform_group = data.transform_group
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
    The streams' storage is named after the benchmark, the stream and the split (the class
    order and task labelling), so checkpoints find it again (see ClassificationDataset).
    """
    n_classes = int(n_classes if n_classes is not None else int(train.targets.max()) + 1)
    check_class_split(n_classes, n_experiences, fixed_class_order, seed)
    order = class_order(n_classes, seed, fixed_class_order)
    per_exp = len(order) // n_experiences
    groups = [sorted(order[i * per_exp : (i + 1) * per_exp]) for i in range(n_experiences)]
    split = "-".join(map(str, order)) + ("/tasks" if return_task_id else "")
    streams = [
        _class_split_stream(f"{name}/{stream}/{split}", stream, data, groups, return_task_id)
        for stream, data in (("train", train), ("test", test))
    ]
    return Benchmark(
        *streams, n_classes=n_classes, classes_order=order, return_task_id=return_task_id,
        name=name,
    )


def _class_split_stream(
    storage_name: str, stream: str, data: ClassificationDataset, groups: list[list[int]],
    return_task_id: bool,
) -> Stream:
    from cl_runner.data.dataset import ClassificationDataset

    x, targets, _ = data.tensors()
    task_labels = torch.zeros_like(targets)
    positions = []
    for i, classes in enumerate(groups):
        mask = torch.isin(targets, torch.tensor(classes, device=targets.device))
        positions.append(torch.nonzero(mask).flatten())
        if return_task_id:
            task_labels[positions[-1]] = i
    data = ClassificationDataset(
        x, targets, task_labels, transform=data.transform, train_transform=data.train_transform,
        name=storage_name,
    )
    return Stream(
        stream,
        [
            Experience(data.subset(pos), i, classes, i if return_task_id else 0, stream)
            for i, (pos, classes) in enumerate(zip(positions, groups, strict=True))
        ],
    )
