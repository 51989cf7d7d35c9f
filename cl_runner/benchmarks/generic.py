"""Avalanche's generic benchmark builders for your own data: ``ni_benchmark`` (new instances),
``dataset_benchmark`` and ``tensors_benchmark`` (experiences given one by one).

Each takes torch datasets, tensors or ``ClassificationDataset`` s (see
``base.as_classification_dataset``) and returns a ``Benchmark`` whose experiences are index
views on one tensor storage per stream, so buffers and loaders run on the fast path.
``nc_benchmark`` (new classes) lives in ``base``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.benchmarks.base import (
    OPTIONAL_SEED,
    Benchmark,
    Experience,
    Stream,
    as_classification_dataset,
    check_unsupported,
    with_transforms,
)
from cl_runner.checks import BOOL, POSITIVE_INT, SettingError

if TYPE_CHECKING:
    from cl_runner.data.dataset import ClassificationDataset

torch = lazy.load("torch")

_TARGET_TRANSFORMS = "target transforms are not supported: map the labels before building"
_OTHER_TRANSFORMS = "give each stream's datasets their transforms before building"


def ni_benchmark(
    train_dataset: Any,
    test_dataset: Any,
    n_experiences: int,
    *,
    task_labels: bool = False,
    shuffle: bool = True,
    seed: int | None = None,
    balance_experiences: bool = False,
    min_class_patterns_in_exp: int = 0,
    fixed_exp_assignment: Sequence[Sequence[int]] | None = None,
    train_transform: Any = None,
    eval_transform: Any = None,
    reproducibility_data: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Benchmark:
    """New-instances split (Avalanche's ``ni_benchmark``): every experience draws samples of
    any class; the test stream is one experience holding the whole test set (task label 0).

    The assignment reproduces Avalanche's draws exactly (same seed, same experiences): each
    class's samples are permuted (one ``torch.randperm`` per class, in class order), then
    either all samples are permuted once and cut into equal consecutive parts, the ``N %
    n_experiences`` left over going in order to the experiences ``randperm(n_experiences)[:r]``
    (default), or, with ``balance_experiences``, each class is shared out equally, its
    remainder going to ``randperm(n_experiences)[:r]`` drawn per class. ``seed`` seeds a private
    generator (Avalanche reseeds the global RNG with it); ``seed=None`` draws from the global
    RNG. ``shuffle=False``: no draws; samples in dataset order, remainders to the first
    experiences. ``fixed_exp_assignment``: the sample indices of each experience, used as
    given. ``task_labels``: training experience ``i`` gets task label ``i``.
    ``min_class_patterns_in_exp`` > 0 is refused (Avalanche 0.6 crashes on it).
    """
    check_unsupported(reproducibility_data=(
        reproducibility_data, "give the split as fixed_exp_assignment"))
    POSITIVE_INT("n_experiences", n_experiences)
    for flag, value in (("task_labels", task_labels), ("shuffle", shuffle),
                        ("balance_experiences", balance_experiences)):
        BOOL(flag, value)
    OPTIONAL_SEED("seed", seed)
    if min_class_patterns_in_exp != 0:
        raise SettingError("min_class_patterns_in_exp", min_class_patterns_in_exp,
                           "0 (Avalanche 0.6 fails with TypeError for any other value)")
    train = as_classification_dataset(train_dataset, what="train_dataset")
    test = as_classification_dataset(test_dataset, what="test_dataset")
    if n_experiences > len(train):
        raise SettingError("n_experiences", n_experiences,
                           f"at most the {len(train)} training samples")
    if fixed_exp_assignment is not None:
        assignment = [torch.as_tensor(list(a), dtype=torch.long) for a in fixed_exp_assignment]
        if len(assignment) != n_experiences:
            raise SettingError("fixed_exp_assignment", f"{len(assignment)} experiences",
                               f"one index list per experience ({n_experiences})")
    else:
        assignment = ni_assignment(train.targets.cpu(), n_experiences, shuffle, seed,
                                   balance_experiences)
    tasks = torch.zeros(len(train), dtype=torch.long)
    if task_labels:
        for i, idx in enumerate(assignment):
            tasks[idx] = i
    train_storage = with_transforms(train, train_transform, eval_transform, task_labels=tasks,
                                    name=None if name is None else f"{name}/train/{seed}")
    test_storage = with_transforms(test, train_transform, eval_transform,
                                   task_labels=torch.zeros(len(test), dtype=torch.long),
                                   name=None if name is None else f"{name}/test").eval()
    train_exps = []
    for i, idx in enumerate(assignment):
        part = train_storage.subset(idx)
        train_exps.append(Experience(part, i, sorted(part.targets.unique().tolist()),
                                     i if task_labels else 0, "train"))
    test_classes = sorted(test_storage.targets.unique().tolist())
    test_exp = Experience(test_storage, 0, test_classes, 0, "test")
    classes = sorted(train.targets.unique().tolist())
    return Benchmark(Stream("train", train_exps), Stream("test", [test_exp]),
                     n_classes=len(classes), classes_order=classes, return_task_id=task_labels,
                     name=name or "benchmark")


def ni_assignment(
    targets: torch.Tensor, n_experiences: int, shuffle: bool, seed: int | None,
    balance: bool,
) -> list[torch.Tensor]:
    """The sample indices of each experience, drawn as Avalanche's ``ni_benchmark`` does."""
    gen = None if seed is None else torch.Generator().manual_seed(int(seed))
    classes = sorted(targets.unique().tolist())
    by_class = []
    for c in classes:
        idx = torch.nonzero(targets == c).flatten()
        if shuffle:
            idx = idx[torch.randperm(len(idx), generator=gen)]
        by_class.append(idx)
    n = len(targets)
    if not balance:
        order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
        share, rest = divmod(n, n_experiences)
        parts = [order[i * share:(i + 1) * share].tolist() for i in range(n_experiences)]
        extra = (torch.randperm(n_experiences, generator=gen)[:rest].tolist() if shuffle
                 else list(range(rest)))
        for k, exp in enumerate(extra):
            parts[exp].append(int(order[n_experiences * share + k]))
        return [torch.tensor(p, dtype=torch.long) for p in parts]
    counts = [[len(idx) // n_experiences] * n_experiences for idx in by_class]
    for k, idx in enumerate(by_class):
        rest = len(idx) % n_experiences
        if rest:
            extra = (torch.randperm(n_experiences, generator=gen)[:rest].tolist() if shuffle
                     else list(range(rest)))
            for exp in extra:
                counts[k][exp] += 1
    taken = [0] * len(by_class)
    parts = []
    for exp in range(n_experiences):
        chunks = []
        for k, idx in enumerate(by_class):
            chunks.append(idx[taken[k]:taken[k] + counts[k][exp]])
            taken[k] += counts[k][exp]
        parts.append(torch.cat(chunks))
    return parts


def _dataset_task_labels(data: ClassificationDataset) -> list[int]:
    return sorted(data.targets_task_labels.unique().tolist())


def _experience_stream(
    stream: str, datasets: Sequence[ClassificationDataset], train_transform: Any,
    eval_transform: Any, name: str | None,
) -> Stream:
    """One experience per dataset, all on one joined storage (views on it)."""
    from cl_runner.data.dataset import ClassificationDataset

    if not datasets:
        return Stream(stream, [])
    joined = ClassificationDataset.concat_all(list(datasets))
    storage = with_transforms(joined, train_transform, eval_transform,
                              name=None if name is None else f"{name}/{stream}")
    if stream != "train":
        storage = storage.eval()
    exps, start = [], 0
    for i, data in enumerate(datasets):
        part = storage.subset(torch.arange(start, start + len(data)))
        start += len(data)
        tasks = _dataset_task_labels(part) or [0]
        exps.append(Experience(part, i, sorted(part.targets.unique().tolist()), tasks[0],
                               stream, all_task_labels=tasks if len(tasks) > 1 else None))
    return Stream(stream, exps)


def _from_experiences(
    streams: dict[str, list[ClassificationDataset]], train_transform: Any,
    eval_transform: Any, name: str | None,
) -> Benchmark:
    built = {key: _experience_stream(key, data, train_transform, eval_transform, name)
             for key, data in streams.items()}
    classes = sorted({c for exp in built["train"] for c in exp.classes_in_this_experience})
    tasks = {t for exp in built["train"] for t in exp.task_labels}
    train, test = built.pop("train"), built.pop("test")
    return Benchmark(train, test, n_classes=len(classes), classes_order=classes,
                     return_task_id=len(tasks) > 1, name=name or "benchmark",
                     other_streams=built)


def _check_complete_test_set(test: list[Any], complete_test_set_only: bool) -> None:
    BOOL("complete_test_set_only", complete_test_set_only)
    if complete_test_set_only and len(test) != 1:
        raise SettingError("complete_test_set_only", True,
                           f"false with {len(test)} test sets (it needs exactly one)")


def dataset_benchmark(
    train_datasets: Sequence[Any],
    test_datasets: Sequence[Any],
    *,
    other_streams_datasets: Mapping[str, Sequence[Any]] | None = None,
    complete_test_set_only: bool = False,
    train_transform: Any = None,
    train_target_transform: Any = None,
    eval_transform: Any = None,
    eval_target_transform: Any = None,
    other_streams_transforms: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Benchmark:
    """One experience per dataset, in the given order, no shuffling (Avalanche's
    ``dataset_benchmark``). Task labels come from each dataset (0 when it has none); an
    experience whose data hold several task labels lists them all in ``task_labels``.
    ``other_streams_datasets={"valid": [...]}`` adds ``benchmark.valid_stream``.
    ``complete_test_set_only``: ``test_datasets`` is one dataset, the only test experience.
    Target transforms are refused (map the labels first); ``train_transform`` /
    ``eval_transform`` apply to every stream's train / eval group.
    """
    check_unsupported(
        train_target_transform=(train_target_transform, _TARGET_TRANSFORMS),
        eval_target_transform=(eval_target_transform, _TARGET_TRANSFORMS),
        other_streams_transforms=(other_streams_transforms, _OTHER_TRANSFORMS),
    )
    test_list = _as_list(test_datasets, complete_test_set_only)
    _check_complete_test_set(test_list, complete_test_set_only)
    streams = {
        "train": [as_classification_dataset(d, what="train_datasets") for d in train_datasets],
        "test": [as_classification_dataset(d, what="test_datasets") for d in test_list],
    }
    for key, datasets in (other_streams_datasets or {}).items():
        streams[key] = [as_classification_dataset(d, what=f"other_streams_datasets[{key!r}]")
                        for d in datasets]
    return _from_experiences(streams, train_transform, eval_transform, name)


def _as_list(value: Any, single: bool) -> list[Any]:
    """``test_datasets`` as a list (one dataset, not in a list, is allowed when ``single``)."""
    if single and not isinstance(value, list | tuple):
        return [value]
    if single and isinstance(value, tuple) and len(value) in (2, 3) and hasattr(value[0], "shape"):
        return [value]  # one (x, y) tuple of tensors
    return list(value)


def tensors_benchmark(
    train_tensors: Sequence[Sequence[Any]],
    test_tensors: Sequence[Sequence[Any]],
    *,
    other_streams_tensors: Mapping[str, Sequence[Sequence[Any]]] | None = None,
    task_labels: Sequence[int],
    complete_test_set_only: bool = False,
    train_transform: Any = None,
    train_target_transform: Any = None,
    eval_transform: Any = None,
    eval_target_transform: Any = None,
    other_streams_transforms: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Benchmark:
    """Experiences from ``(x, y)`` tensor pairs, one pair per experience (Avalanche's
    ``tensors_benchmark``). ``task_labels`` (required) gives experience ``i`` of EVERY stream
    task label ``task_labels[i]``.
    """
    from cl_runner.data.dataset import ClassificationDataset

    check_unsupported(
        train_target_transform=(train_target_transform, _TARGET_TRANSFORMS),
        eval_target_transform=(eval_target_transform, _TARGET_TRANSFORMS),
        other_streams_transforms=(other_streams_transforms, _OTHER_TRANSFORMS),
    )
    labels = [int(t) for t in task_labels]
    test_list = _as_list(test_tensors, complete_test_set_only)
    _check_complete_test_set(test_list, complete_test_set_only)
    raw = {"train": list(train_tensors), "test": test_list,
           **{k: list(v) for k, v in (other_streams_tensors or {}).items()}}
    streams: dict[str, list[ClassificationDataset]] = {}
    for key, pairs in raw.items():
        if len(pairs) > len(labels):
            raise SettingError("task_labels", labels,
                               f"one label per experience: the {key} stream has {len(pairs)}")
        streams[key] = []
        for i, pair in enumerate(pairs):
            x, y = (torch.as_tensor(v) for v in list(pair)[:2])
            streams[key].append(ClassificationDataset(x, y, labels[i]))
    return _from_experiences(streams, train_transform, eval_transform, name)
