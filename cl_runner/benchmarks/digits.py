"""Split Digits: scikit-learn's bundled 8x8 digits, the offline default benchmark."""

from __future__ import annotations

import gzip
import importlib.resources
from collections.abc import Sequence

import numpy as np
import torch

from cl_runner.benchmarks.base import Benchmark, nc_benchmark
from cl_runner.data.dataset import ClassificationDataset

DIGITS_MEAN, DIGITS_STD = 4.88, 6.02  # pixel statistics of the 1797 images (scale 0..16)


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


def SplitDigits(  # noqa: N802 - benchmark constructors use Avalanche's class-style names
    n_experiences: int = 5,
    *,
    return_task_id: bool = False,
    seed: int | None = 0,
    fixed_class_order: Sequence[int] | None = None,
    test_size: float = 0.25,
) -> Benchmark:
    """10 digit classes in ``n_experiences`` experiences; a stratified held-out test split.

    Inputs are flat 64-dim float vectors, standardised with the dataset's pixel statistics.
    The train/test split is fixed (stratified, its own seed) so that ``seed`` changes the
    class order and training, not the test set.
    """
    pixels, y = load_digits_tensors()
    x = (pixels - DIGITS_MEAN) / DIGITS_STD
    train_idx, test_idx = stratified_split(y, test_size)
    return nc_benchmark(
        ClassificationDataset(x[train_idx], y[train_idx]),
        ClassificationDataset(x[test_idx], y[test_idx]),
        n_experiences,
        n_classes=10,
        return_task_id=return_task_id,
        seed=seed,
        fixed_class_order=fixed_class_order,
        name="split_digits",
    )
