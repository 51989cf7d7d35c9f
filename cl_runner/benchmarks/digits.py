"""Split Digits: scikit-learn's bundled 8x8 digits, the offline default benchmark."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cl_runner.benchmarks.base import Benchmark, nc_benchmark
from cl_runner.data.dataset import ClassificationDataset

DIGITS_MEAN, DIGITS_STD = 4.88, 6.02  # pixel statistics of the 1797 images (scale 0..16)


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
    The train/test split is fixed (stratified, ``random_state=0``) so that seeds change the
    class order and training, not the test set.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (torch.tensor(digits.data, dtype=torch.float32) - DIGITS_MEAN) / DIGITS_STD
    y = torch.tensor(digits.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(
        torch.arange(len(y)).numpy(), test_size=test_size, stratify=y.numpy(), random_state=0
    )
    train_idx, test_idx = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
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
