"""Split Digits: scikit-learn's bundled 8x8 digits, the offline default benchmark."""

from __future__ import annotations

import gzip
import importlib.resources
from collections.abc import Sequence
from typing import Any

import lazy_loader as lazy

from cl_runner.benchmarks.base import (
    Benchmark,
    check_class_split,
    class_split_info,
    declared,
    nc_benchmark,
)
from cl_runner.benchmarks.info import StreamInfo
from cl_runner.checks import BOOL, Rule, is_number

torch = lazy.load("torch")
np = lazy.load("numpy")

DIGITS_MEAN, DIGITS_STD = 4.88, 6.02  # pixel statistics of the 1797 images (scale 0..16)
N_CLASSES, INPUT_SHAPE = 10, (64,)
TEST_SIZE = Rule(lambda v: is_number(v) and 0 < v < 1, "a number in (0, 1)")


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1797 digits as (float pixels [N, 64], labels [N]).

    Reads the file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``) directly:
    the same data as ``sklearn.datasets.load_digits`` without importing scikit-learn, which
    costs about a second per run.
    """
    source = importlib.resources.files("sklearn.datasets.data") / "digits.csv.gz"
    with source.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float32)
    return torch.from_numpy(table[:, :-1].copy()), torch.from_numpy(table[:, -1].astype(np.int64))


def stratified_split(
    targets: torch.Tensor, test_size: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test indices holding ``test_size`` of every class in the test part."""
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in targets.unique():
        members = torch.nonzero(targets == c).flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        n_test = round(len(members) * test_size)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def _check(n_experiences: Any = 5, *, fixed_class_order: Any = None, seed: Any = 0,
           test_size: Any = 0.25, shuffle: Any = True, **_: Any) -> None:
    BOOL("shuffle", shuffle)
    check_class_split(N_CLASSES, n_experiences, fixed_class_order, seed)
    TEST_SIZE("test_size", test_size)


def _info(n_experiences: int = 5, *, return_task_id: bool = False,
          fixed_class_order: Sequence[int] | None = None, **_: Any) -> StreamInfo:
    return class_split_info(N_CLASSES, INPUT_SHAPE, n_experiences, return_task_id,
                            fixed_class_order)


@declared(info=_info, check_args=_check)
def SplitDigits(  # noqa: N802 - benchmark constructors use Avalanche's class-style names
    n_experiences: int = 5,
    *,
    return_task_id: bool = False,
    seed: int | None = 0,
    fixed_class_order: Sequence[int] | None = None,
    test_size: float = 0.25,
    shuffle: bool = True,
) -> Benchmark:
    """10 digit classes in ``n_experiences`` experiences; a stratified held-out test split.

    Inputs are flat 64-dim float vectors, standardised with the dataset's pixel statistics.
    The train/test split is fixed (stratified, its own seed) so that ``seed`` changes the
    class order and training, not the test set. The class order follows ``nc_benchmark``
    (``seed=None``: drawn from the global torch RNG; ``shuffle=False``: ascending).
    """
    from cl_runner.data.dataset import ClassificationDataset

    _check(n_experiences, fixed_class_order=fixed_class_order, seed=seed, test_size=test_size,
           shuffle=shuffle)
    pixels, y = load_digits_tensors()
    x = (pixels - DIGITS_MEAN) / DIGITS_STD
    train_idx, test_idx = stratified_split(y, test_size)
    return nc_benchmark(
        ClassificationDataset(x[train_idx], y[train_idx]),
        ClassificationDataset(x[test_idx], y[test_idx]),
        n_experiences,
        return_task_id,
        n_classes=N_CLASSES,
        seed=seed,
        shuffle=shuffle,
        fixed_class_order=fixed_class_order,
        name="split_digits",
    )
