"""Benchmarks as streams of experiences over shared tensor storage, and Avalanche's
``nc_benchmark`` (new classes) builder for any dataset.

A class-incremental split orders the classes (drawn from ``seed``, or given), cuts them into
``n_experiences`` groups (equal, or sized by ``per_exp_classes``) and makes each experience an
index view on the stream's one dataset. ``task_labels`` / ``return_task_id`` gives experience
``i`` task label ``i``.

Every benchmark constructor declares, without loading data or torch, what its arguments give:
``check_args(**args)`` raises ``SettingError`` for a split that cannot be made, and
``info(**args)`` returns the ``StreamInfo`` (classes, experiences, tasks, input shape) that
other components' settings are checked against (see ``declared``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import lazy_loader as lazy

from cl_runner.benchmarks.info import StreamInfo
from cl_runner.benchmarks.user_transforms import batch_transform
from cl_runner.checks import BOOL, POSITIVE_INT, Rule, SettingError, is_int

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


# -- experiences and streams ----------------------------------------------------------------------
@dataclass(eq=False)
class Experience:
    """One step of a stream: its data, position, classes and task label (Avalanche's names).

    ``origin`` is the stream it was taken from (set by the stream; a sliced stream gives
    copies whose origin is the slice, as Avalanche's do). ``task_labels`` lists every task
    label of the data when it holds several (``dataset_benchmark``), else ``[task_label]``.
    """

    dataset: ClassificationDataset
    current_experience: int
    classes_in_this_experience: list[int]
    task_label: int
    origin_stream: str = "train"
    origin: Stream | None = field(default=None, repr=False)
    all_task_labels: list[int] | None = field(default=None, repr=False)

    @property
    def task_labels(self) -> list[int]:
        return list(self.all_task_labels) if self.all_task_labels else [self.task_label]

    def _train_classes(self, before: bool) -> list[int]:
        bench = getattr(self.origin, "benchmark", None)
        if bench is None:
            raise AttributeError("previous_classes/future_classes need the experience's "
                                 "benchmark (this experience was built outside one)")
        exps = bench.train_stream.experiences
        chosen = exps[: self.current_experience] if before else exps[self.current_experience + 1:]
        return sorted({c for e in chosen for c in e.classes_in_this_experience})

    @property
    def previous_classes(self) -> list[int]:
        """Classes of the training experiences before this one (sorted)."""
        return self._train_classes(before=True)

    @property
    def future_classes(self) -> list[int]:
        """Classes of the training experiences after this one (sorted)."""
        return self._train_classes(before=False)


@dataclass(eq=False)
class Stream(Sequence):
    """An ordered, indexable list of experiences with a name ('train', 'test', ...).

    A slice is a new stream of copied experiences whose ``origin`` is the slice (what
    ``EvaluationPlugin(strict_checks=True)`` compares with the full stream).
    """

    name: str
    experiences: list[Experience] = field(default_factory=list)
    benchmark: Benchmark | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for exp in self.experiences:
            if exp.origin is None:
                exp.origin = self

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            part = Stream(self.name, [], self.benchmark)
            part.experiences = [dataclasses.replace(e, origin=part) for e in self.experiences[i]]
            return part
        return self.experiences[i]

    def __len__(self) -> int:
        return len(self.experiences)

    def __iter__(self) -> Iterator[Experience]:
        return iter(self.experiences)


# -- class splits: checks (no torch) --------------------------------------------------------------
def _check_per_exp_classes(per_exp_classes: Any, n_experiences: int, classes: int) -> None:
    if not isinstance(per_exp_classes, Mapping) or not all(
        is_int(k) and is_int(v) for k, v in per_exp_classes.items()
    ):
        raise SettingError("per_exp_classes", per_exp_classes,
                           "null or a mapping experience id -> number of classes")
    bad = sorted(k for k in per_exp_classes if not 0 <= k < n_experiences)
    if bad:
        raise SettingError("per_exp_classes", dict(per_exp_classes),
                           f"experience ids in 0..{n_experiences - 1} (got {bad})")
    if any(v < 0 for v in per_exp_classes.values()):
        raise SettingError("per_exp_classes", dict(per_exp_classes),
                           "non-negative class counts")
    fixed = sum(per_exp_classes.values())
    rest, free = classes - fixed, n_experiences - len(per_exp_classes)
    if rest < 0 or (free == 0 and rest != 0) or (free and rest % free):
        raise SettingError("per_exp_classes", dict(per_exp_classes),
                           f"counts that leave the other {free} experience(s) an equal share "
                           f"of the remaining {rest} of {classes} classes")


def check_class_split(
    n_classes: int, n_experiences: Any, fixed_class_order: Any = None, seed: Any = None, *,
    per_exp_classes: Any = None, class_ids: Sequence[int] | None = None,
) -> int:
    """Raise ``SettingError`` unless the classes cut into ``n_experiences`` (evenly, or as
    ``per_exp_classes`` says); return how many classes the split uses.

    ``class_ids``: the class labels present (default ``0..n_classes-1``).
    """
    OPTIONAL_SEED("seed", seed)
    POSITIVE_INT("n_experiences", n_experiences)
    known = set(range(n_classes)) if class_ids is None else set(class_ids)
    classes = len(known)
    if fixed_class_order is not None:
        order = list(fixed_class_order)
        if not order or not all(is_int(c) for c in order):
            raise SettingError("fixed_class_order", order,
                               "null or a non-empty list of class ids")
        unknown = sorted({c for c in order if c not in known})
        if unknown:
            ids = (f"0..{n_classes - 1}" if class_ids is None
                   else f"of the dataset ({sorted(known)})")
            raise SettingError("fixed_class_order", order,
                               f"class ids {ids} (unknown: {unknown})")
        if len(set(order)) != len(order):
            raise SettingError("fixed_class_order", order, "each class at most once")
        classes = len(order)
    if per_exp_classes is not None:
        _check_per_exp_classes(per_exp_classes, n_experiences, classes)
    elif n_experiences > classes or classes % n_experiences:
        divisors = [d for d in range(1, classes + 1) if classes % d == 0]
        raise SettingError("n_experiences", n_experiences,
                           f"a divisor of the {classes} classes: {divisors}")
    return classes


def check_class_ids_options(from_first_exp: Any, in_each_exp: Any) -> None:
    BOOL("class_ids_from_zero_from_first_exp", from_first_exp)
    BOOL("class_ids_from_zero_in_each_exp", in_each_exp)
    if from_first_exp and in_each_exp:
        raise SettingError("class_ids_from_zero_in_each_exp", True,
                           "false when class_ids_from_zero_from_first_exp is true "
                           "(choose one remapping)")


def experience_class_counts(
    classes: int, n_experiences: int, per_exp_classes: Mapping[int, int] | None = None
) -> list[int]:
    """Classes per experience: ``per_exp_classes`` where given, an equal share elsewhere."""
    per_exp_classes = dict(per_exp_classes or {})
    free = n_experiences - len(per_exp_classes)
    share = (classes - sum(per_exp_classes.values())) // free if free else 0
    return [per_exp_classes.get(i, share) for i in range(n_experiences)]


def class_split_info(
    n_classes: int, input_shape: tuple[int, ...], n_experiences: int,
    return_task_id: bool = False, fixed_class_order: Sequence[int] | None = None,
) -> StreamInfo:
    """What a class-incremental split of ``n_classes`` gives (arguments already checked).

    ``n_classes`` of the result is the width a classifier needs: the dataset's class ids
    (remapped ids are smaller, so the same width serves them).
    """
    return StreamInfo(
        n_classes=n_classes, n_experiences=n_experiences,
        n_tasks=n_experiences if return_task_id else 1, input_shape=input_shape,
    )


def class_order(
    n_classes: int, seed: int | None, fixed_class_order: Sequence[int] | None,
    shuffle: bool = True, class_ids: Sequence[int] | None = None,
) -> list[int]:
    """The class order of a split, as Avalanche draws it: the given order; else ascending
    ids permuted by ``torch.randperm`` (seeded by ``seed`` on a private generator, which gives
    Avalanche's order without reseeding the global RNG; ``seed=None`` draws from the global
    RNG as Avalanche does); ascending with ``shuffle=False``."""
    if fixed_class_order is not None:
        return [int(c) for c in fixed_class_order]
    ids = list(range(n_classes)) if class_ids is None else sorted(int(c) for c in class_ids)
    if not shuffle:
        return ids
    if seed is None:
        perm = torch.randperm(len(ids))
    else:
        perm = torch.randperm(len(ids), generator=torch.Generator().manual_seed(int(seed)))
    return [ids[i] for i in perm.tolist()]


# -- benchmarks -----------------------------------------------------------------------------------
class Benchmark:
    """Train and test streams (and any others) plus what describes them (Avalanche's names).

    ``n_classes`` counts the classes (Avalanche's meaning); ``info.n_classes`` is the width a
    classifier needs (largest class id + 1, or ``n_outputs`` when given).
    """

    def __init__(
        self,
        train_stream: Stream,
        test_stream: Stream,
        *,
        n_classes: int,
        classes_order: Sequence[int],
        return_task_id: bool = False,
        name: str = "benchmark",
        other_streams: Mapping[str, Stream] | None = None,
        classes_order_original_ids: Sequence[int] | None = None,
        class_mapping: Sequence[int] | None = None,
        n_outputs: int | None = None,
    ) -> None:
        self.train_stream = train_stream
        self.test_stream = test_stream
        self.other_streams = dict(other_streams or {})
        for stream in self.streams.values():
            stream.benchmark = self
        for key, stream in self.other_streams.items():
            setattr(self, f"{key}_stream", stream)
        self.n_classes = n_classes
        self.classes_order = list(classes_order)
        self.classes_order_original_ids = list(
            classes_order if classes_order_original_ids is None else classes_order_original_ids)
        self.class_mapping = None if class_mapping is None else list(class_mapping)
        self.return_task_id = return_task_id
        self.name = name
        self._n_outputs = n_outputs

    @property
    def n_experiences(self) -> int:
        return len(self.train_stream)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample (models size their first layer from it)."""
        return self.train_stream[0].dataset.input_shape

    @property
    def info(self) -> StreamInfo:
        tasks = {t for exp in self.train_stream for t in exp.task_labels}
        width = self._n_outputs
        if width is None:
            width = max([self.n_classes, *(c + 1 for c in self.classes_order)])
        return StreamInfo(width, self.n_experiences, len(tasks), self.input_shape)

    @property
    def classes_in_experience(self) -> list[list[int]]:
        return [exp.classes_in_this_experience for exp in self.train_stream]

    @property
    def n_classes_per_exp(self) -> list[int]:
        return [len(c) for c in self.classes_in_experience]

    @property
    def streams(self) -> dict[str, Stream]:
        return {"train": self.train_stream, "test": self.test_stream, **self.other_streams}

    def to(self, device: torch.device | str) -> Benchmark:
        """Move every stream's storage to ``device`` once; experiences stay views on it."""
        moved: list[tuple[ClassificationDataset, ClassificationDataset]] = []
        for stream in self.streams.values():
            for exp in stream:
                data = exp.dataset
                root = next((new for old, new in moved if old.shares_storage(data)), None)
                if root is None:
                    root = data.storage_view().to(device)
                    moved.append((data, root))
                exp.dataset = root.subset(data.storage_indices.to(device))
                exp.dataset.transform_group = data.transform_group
        return self


# -- any data as tensor storage -------------------------------------------------------------------
def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if type(value).__module__.startswith("PIL"):
        from torchvision.transforms.functional import to_tensor

        return to_tensor(value)  # what ToTensor gives: float (C, H, W) in [0, 1]
    return torch.as_tensor(value)


def as_classification_dataset(
    dataset: Any, transform_groups: Mapping[str, Any] | None = None, *, what: str = "dataset",
) -> ClassificationDataset:
    """Any supported dataset as a ``ClassificationDataset`` (Avalanche's name and arguments).

    Accepted: a ``ClassificationDataset`` (returned as is); a tuple ``(x, y)`` or
    ``(x, y, task_labels)`` of tensors or arrays; a ``TensorDataset``; any map-style torch
    dataset whose items are ``(x, y)`` or ``(x, y, t)``. Other datasets are read once, item by
    item (their own transform runs once, here): PIL images become float tensors in [0, 1],
    as ``ToTensor`` makes them. ``targets_task_labels`` on the dataset give the task labels.
    ``transform_groups``: ``{"train": transform, "eval": transform}`` (Avalanche's groups; an
    Avalanche ``TransformGroups`` object works too), added to the returned data's groups.
    """
    data = _as_dataset(dataset, what)
    if transform_groups is None:
        return data
    groups = getattr(transform_groups, "transform_groups", transform_groups)
    if not isinstance(groups, Mapping) or not set(groups) <= {"train", "eval"}:
        raise SettingError("transform_groups", transform_groups,
                           'None or a mapping {"train": transform, "eval": transform}')
    train, evaluation = groups.get("train"), groups.get("eval")
    if isinstance(train, tuple | list):  # Avalanche's (x transform, target transform) pairs
        train = train[0]
    if isinstance(evaluation, tuple | list):
        evaluation = evaluation[0]
    return with_transforms(data, train, evaluation)


def _as_dataset(data: Any, what: str) -> ClassificationDataset:
    from torch.utils.data import Dataset, TensorDataset

    from cl_runner.data.dataset import ClassificationDataset

    if isinstance(data, ClassificationDataset):
        return data
    if isinstance(data, tuple | list) and len(data) in (2, 3) and not isinstance(data, Dataset):
        x, y, *t = (_as_tensor(v) for v in data)
        return ClassificationDataset(x, y, t[0] if t else None)
    if isinstance(data, TensorDataset) and len(data.tensors) in (2, 3):
        x, y, *t = data.tensors
        tasks = getattr(data, "targets_task_labels", None)
        return ClassificationDataset(x, y, t[0] if t else _tasks_of(tasks))
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise TypeError(f"{what}: expected a dataset (map-style, with __len__ and "
                        f"__getitem__) or an (x, y) tuple of tensors, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{what} is empty")
    items = [data[i] for i in range(len(data))]
    if not all(isinstance(item, tuple | list) and len(item) >= 2 for item in items[:1]):
        raise TypeError(f"{what}: items must be (x, y) or (x, y, task_label), got "
                        f"{type(items[0]).__name__}")
    x = torch.stack([_as_tensor(item[0]) for item in items])
    y = torch.as_tensor([int(item[1]) for item in items], dtype=torch.long)
    if len(items[0]) >= 3:
        tasks = [int(item[2]) for item in items]
    else:
        tasks = _tasks_of(getattr(data, "targets_task_labels", None))
    return ClassificationDataset(x, y, tasks)


def _tasks_of(labels: Any) -> Any:
    if labels is None:
        return None
    return torch.as_tensor([int(t) for t in labels], dtype=torch.long)


def with_transforms(
    data: ClassificationDataset, train_transform: Any, eval_transform: Any, *,
    name: str | None = None, targets: torch.Tensor | None = None,
    task_labels: torch.Tensor | None = None,
) -> ClassificationDataset:
    """New storage with ``data``'s samples (new ``targets`` / ``task_labels`` if given) and
    Avalanche's per-group transforms added after the dataset's own batched ``transform``."""
    from cl_runner.data.dataset import ClassificationDataset

    x, y, t = _storage_tensors(data)
    train_t = batch_transform(train_transform)
    eval_t = batch_transform(eval_transform)
    return ClassificationDataset(
        x, y if targets is None else targets, t if task_labels is None else task_labels,
        transform=data.transform,
        train_transform=_then(data.train_transform, train_t),
        eval_transform=_then(data.eval_transform, eval_t),
        name=name,
    )


def _storage_tensors(data: ClassificationDataset) -> tuple[Any, Any, Any]:
    """``data.tensors()``, without copying when ``data`` is its whole storage in order."""
    idx = data._idx
    storage = data._storage
    if idx is None or (len(idx) == len(storage.y)
                       and idx.equal(torch.arange(len(idx), device=idx.device))):
        return storage.x, storage.y, storage.t
    return data.tensors()


def _then(first: Any, second: Any) -> Any:
    from cl_runner.benchmarks.user_transforms import Chain

    if first is None or second is None:
        return first if second is None else second
    return Chain([first, second])


def check_unsupported(**values: Any) -> None:
    """One clear error for an Avalanche argument whose value cannot be honoured here."""
    for name, (value, why) in values.items():
        if value is not None:
            raise SettingError(name, value, f"None ({why})")


# -- nc_benchmark ---------------------------------------------------------------------------------
def nc_benchmark(
    train_dataset: Any,
    test_dataset: Any,
    n_experiences: int,
    task_labels: bool,
    *,
    shuffle: bool = True,
    seed: int | None = None,
    fixed_class_order: Sequence[int] | None = None,
    per_exp_classes: Mapping[int, int] | None = None,
    class_ids_from_zero_from_first_exp: bool = False,
    class_ids_from_zero_in_each_exp: bool = False,
    one_dataset_per_exp: bool = False,
    train_transform: Any = None,
    eval_transform: Any = None,
    reproducibility_data: Mapping[str, Any] | None = None,
    n_classes: int | None = None,
    name: str | None = None,
) -> Benchmark:
    """New-classes split of any dataset (Avalanche's ``nc_benchmark``, same arguments).

    Datasets: see ``as_classification_dataset`` (torch datasets, tensors, ours). Classes are
    ordered by ``fixed_class_order``, else ascending ids permuted by ``seed`` (Avalanche's
    draw; ``seed=None``: the global torch RNG; ``shuffle=False``: ascending), then cut into
    ``n_experiences`` (equal groups, or ``per_exp_classes={exp: n}`` for some). ``task_labels``
    gives experience ``i`` task label ``i`` in both streams. ``class_ids_from_zero_*`` remap
    the labels as Avalanche does. ``one_dataset_per_exp``: lists of datasets, one experience
    each, classes renumbered one dataset after another (``shuffle`` permutes the datasets).
    ``train_transform`` / ``eval_transform`` act in the train / eval group (see
    ``user_transforms``).

    Ours (keyword-only): ``n_classes`` makes the class ids ``0..n_classes-1`` (default: the
    train labels present); ``name`` names the storage so checkpoints find it again.
    Samples inside an experience keep the dataset's order (Avalanche groups them by class).
    """
    check_unsupported(reproducibility_data=(
        reproducibility_data, "give the split as fixed_class_order / per_exp_classes"))
    BOOL("task_labels", task_labels)
    BOOL("shuffle", shuffle)
    check_class_ids_options(class_ids_from_zero_from_first_exp, class_ids_from_zero_in_each_exp)
    if one_dataset_per_exp:
        return _one_dataset_per_exp(
            train_dataset, test_dataset, n_experiences, task_labels, shuffle, seed,
            fixed_class_order, per_exp_classes, class_ids_from_zero_from_first_exp,
            class_ids_from_zero_in_each_exp, train_transform, eval_transform, name)
    train = as_classification_dataset(train_dataset, what="train_dataset")
    test = as_classification_dataset(test_dataset, what="test_dataset")
    ids = None if n_classes is not None else sorted(train.targets.unique().tolist())
    width = int(n_classes) if n_classes is not None else (ids[-1] + 1 if ids else 0)
    check_class_split(width, n_experiences, fixed_class_order, seed,
                      per_exp_classes=per_exp_classes, class_ids=ids)
    order = class_order(width, seed, fixed_class_order, shuffle, ids)
    counts = experience_class_counts(len(order), n_experiences, per_exp_classes)
    starts = [sum(counts[:i]) for i in range(n_experiences + 1)]
    groups = [order[starts[i]:starts[i + 1]] for i in range(n_experiences)]
    mapping = _class_mapping(order, groups, class_ids_from_zero_from_first_exp,
                             class_ids_from_zero_in_each_exp)
    split = "-".join(map(str, order)) + ("/tasks" if task_labels else "")
    if class_ids_from_zero_from_first_exp or class_ids_from_zero_in_each_exp:
        split += "/from_first" if class_ids_from_zero_from_first_exp else "/in_each"
    streams = [
        _class_split_stream(None if name is None else f"{name}/{stream}/{split}", stream, data,
                            groups, task_labels, mapping,
                            train_transform, eval_transform)
        for stream, data in (("train", train), ("test", test))
    ]
    mapped_order = order if mapping is None else [mapping[c] for c in order]
    return Benchmark(
        *streams, n_classes=len(order) if n_classes is None else int(n_classes),
        classes_order=mapped_order, classes_order_original_ids=order,
        class_mapping=_mapping_list(mapping, order), return_task_id=task_labels,
        name=name or "benchmark", n_outputs=width,
    )


def _class_mapping(
    order: list[int], groups: list[list[int]], from_first: bool, in_each: bool
) -> dict[int, int] | None:
    if from_first:
        return {c: i for i, c in enumerate(order)}
    if in_each:
        return {c: i for group in groups for i, c in enumerate(group)}
    return None


def _mapping_list(mapping: dict[int, int] | None, order: list[int]) -> list[int]:
    """Avalanche's ``class_mapping``: original id -> new id, -1 for ids not in the split."""
    size = max(order) + 1 if order else 0
    table = [-1] * size
    for c in order:
        table[c] = c if mapping is None else mapping[c]
    return table


def _class_split_stream(
    storage_name: str | None, stream: str, data: ClassificationDataset,
    groups: list[list[int]], task_labels: bool, mapping: dict[int, int] | None,
    train_transform: Any = None, eval_transform: Any = None,
) -> Stream:
    targets = data.targets
    tasks = torch.zeros_like(targets)
    positions = []
    for i, classes in enumerate(groups):
        mask = torch.isin(targets, torch.tensor(classes, device=targets.device))
        positions.append(torch.nonzero(mask).flatten())
        if task_labels:
            tasks[positions[-1]] = i
    new_targets = targets
    if mapping is not None:
        table = torch.full((int(targets.max()) + 1 if len(targets) else 1,), -1,
                           dtype=torch.long, device=targets.device)
        for c, m in mapping.items():
            if c < len(table):
                table[c] = m
        new_targets = table[targets]
    storage = with_transforms(data, train_transform, eval_transform, name=storage_name,
                              targets=new_targets, task_labels=tasks)
    if stream != "train":
        storage = storage.eval()
    return Stream(stream, [
        Experience(storage.subset(pos), i,
                   sorted(classes if mapping is None else [mapping[c] for c in classes]),
                   i if task_labels else 0, stream)
        for i, (pos, classes) in enumerate(zip(positions, groups, strict=True))
    ])


def _one_dataset_per_exp(
    train_datasets: Any, test_datasets: Any, n_experiences: int, task_labels: bool,
    shuffle: bool, seed: int | None, fixed_class_order: Any, per_exp_classes: Any,
    from_first: bool, in_each: bool, train_transform: Any, eval_transform: Any,
    name: str | None,
) -> Benchmark:
    """Avalanche's ``one_dataset_per_exp``: dataset ``k`` is one experience; its classes are
    renumbered after those of the datasets before it; ``shuffle`` permutes the datasets."""
    from cl_runner.data.dataset import ClassificationDataset

    if fixed_class_order is not None or per_exp_classes is not None:
        raise SettingError("one_dataset_per_exp", True,
                           "false with fixed_class_order or per_exp_classes (as in Avalanche)")
    trains = [as_classification_dataset(d, what="train_dataset") for d in train_datasets]
    tests = [as_classification_dataset(d, what="test_dataset") for d in test_datasets]
    if not (len(trains) == len(tests) == n_experiences):
        raise SettingError("n_experiences", n_experiences,
                           f"the number of datasets ({len(trains)} train, {len(tests)} test) "
                           "with one_dataset_per_exp")
    OPTIONAL_SEED("seed", seed)
    offsets, relabel = 0, []
    for data in trains:
        ids = sorted(data.targets.unique().tolist())
        relabel.append({c: offsets + i for i, c in enumerate(ids)})
        offsets += len(ids)
    exp_order = class_order(n_experiences, seed, None, shuffle)  # a permutation of datasets
    streams = []
    for stream, datasets in (("train", trains), ("test", tests)):
        parts = []
        for k in exp_order:
            data, table = datasets[k], relabel[k]
            y = torch.tensor([table[int(c)] for c in data.targets.tolist()], dtype=torch.long)
            parts.append((data, y))
        x = torch.cat([d.tensors()[0] for d, _ in parts])
        y = torch.cat([labels for _, labels in parts])
        sizes = [len(d) for d, _ in parts]
        t = torch.cat([torch.full((n,), i if task_labels else 0, dtype=torch.long)
                       for i, n in enumerate(sizes)])
        first = parts[0][0]
        joined = ClassificationDataset(x, y, t, transform=first.transform,
                                       train_transform=first.train_transform,
                                       eval_transform=first.eval_transform)
        streams.append((stream, joined, sizes))
    groups = [sorted(relabel[k].values()) for k in exp_order]
    order = [c for g in groups for c in g]
    mapping = _class_mapping(order, groups, from_first, in_each)
    built = []
    for stream, joined, sizes in streams:
        exps, start = [], 0
        targets = joined.targets if mapping is None else torch.tensor(
            [mapping[int(c)] for c in joined.targets.tolist()], dtype=torch.long)
        storage = with_transforms(
            joined, train_transform, eval_transform, targets=targets,
            name=None if name is None else f"{name}/{stream}/datasets-{exp_order}")
        if stream != "train":
            storage = storage.eval()
        for i, n in enumerate(sizes):
            classes = groups[i] if mapping is None else [mapping[c] for c in groups[i]]
            exps.append(Experience(storage.subset(torch.arange(start, start + n)), i,
                                   sorted(classes), i if task_labels else 0, stream))
            start += n
        built.append(Stream(stream, exps))
    mapped_order = order if mapping is None else [mapping[c] for c in order]
    return Benchmark(*built, n_classes=len(order), classes_order=mapped_order,
                     classes_order_original_ids=order, return_task_id=task_labels,
                     class_mapping=_mapping_list(mapping, order), name=name or "benchmark")
