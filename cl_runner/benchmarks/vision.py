"""Avalanche's classic vision benchmarks on tensor storage.

Images are loaded once through torchvision (torchvision_sources: verification, offline mirrors,
tensor cache) and held as uint8 ``(N, C, H, W)`` storage; normalisation is the datasets' batched
``transform``, and CIFAR's crop-and-flip augmentation their batched ``train_transform`` (test
data is never augmented). Models therefore see float ``(C, H, W)`` inputs: ``(1, 28, 28)`` for
the MNIST family, ``(3, 32, 32)`` for CIFAR.

Data location arguments, shared by every constructor: ``root`` (torchvision's layout below it;
default ``$CL_RUNNER_DATA_ROOT`` or ``./data``), ``download`` (torchvision's download),
``mirror`` (a local folder with the original files, used when ``root`` lacks them) and
``verify_checksums`` (official files only; False for custom files in the same format).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from cl_runner.benchmarks.base import (
    Benchmark,
    BenchmarkConfigError,
    Experience,
    Stream,
    nc_benchmark,
    resolve_class_order,
)
from cl_runner.benchmarks.batch_transforms import NormalizePixels, RandomCropFlip
from cl_runner.benchmarks.torchvision_sources import load_vision_tensors
from cl_runner.data.dataset import ClassificationDataset

# (mean, std) per channel on the 0..1 scale, as in Avalanche's default transforms
MNIST_STATS = ((0.1307,), (0.3081,))
FMNIST_STATS = ((0.2860,), (0.3530,))
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
CIFAR_PADDING = 4

PathLike = str | Path | None
# Where Debian's dataset-fashion-mnist package puts the original files (skipped if absent).
FMNIST_MIRROR = os.environ.get("CL_RUNNER_FMNIST_MIRROR", "/usr/share/datasets/fashion-mnist")


def SplitMNIST(  # noqa: N802 - benchmark constructors use Avalanche's class-style names
    n_experiences: int = 5,
    *,
    return_task_id: bool = False,
    seed: int | None = 0,
    fixed_class_order: Sequence[int] | None = None,
    root: PathLike = None,
    download: bool = False,
    mirror: PathLike = None,
    verify_checksums: bool = True,
) -> Benchmark:
    """MNIST's 10 digits in ``n_experiences`` class-incremental experiences."""
    return _class_split(
        "mnist", 10, MNIST_STATS, False, n_experiences, return_task_id, seed, fixed_class_order,
        dict(root=root, download=download, mirror=mirror, verify_checksums=verify_checksums),
    )


def SplitFMNIST(  # noqa: N802
    n_experiences: int = 5,
    *,
    return_task_id: bool = False,
    seed: int | None = 0,
    fixed_class_order: Sequence[int] | None = None,
    root: PathLike = None,
    download: bool = False,
    mirror: PathLike = FMNIST_MIRROR,
    verify_checksums: bool = True,
) -> Benchmark:
    """Fashion-MNIST's 10 clothing classes in ``n_experiences`` class-incremental experiences.

    ``mirror`` defaults to Debian's ``dataset-fashion-mnist`` folder (or
    ``$CL_RUNNER_FMNIST_MIRROR``), so the seed tutorial runs offline where that package is.
    """
    return _class_split(
        "fmnist", 10, FMNIST_STATS, False, n_experiences, return_task_id, seed,
        fixed_class_order,
        dict(root=root, download=download, mirror=mirror, verify_checksums=verify_checksums),
    )


def SplitCIFAR10(  # noqa: N802
    n_experiences: int = 5,
    *,
    return_task_id: bool = False,
    seed: int | None = 0,
    fixed_class_order: Sequence[int] | None = None,
    root: PathLike = None,
    download: bool = False,
    mirror: PathLike = None,
    verify_checksums: bool = True,
) -> Benchmark:
    """CIFAR-10 in ``n_experiences`` experiences; training batches get random crop + flip."""
    return _class_split(
        "cifar10", 10, CIFAR10_STATS, True, n_experiences, return_task_id, seed,
        fixed_class_order,
        dict(root=root, download=download, mirror=mirror, verify_checksums=verify_checksums),
    )


def SplitCIFAR100(  # noqa: N802
    n_experiences: int = 10,
    *,
    return_task_id: bool = False,
    seed: int | None = 0,
    fixed_class_order: Sequence[int] | None = None,
    root: PathLike = None,
    download: bool = False,
    mirror: PathLike = None,
    verify_checksums: bool = True,
) -> Benchmark:
    """CIFAR-100 (fine labels) in ``n_experiences`` experiences; training batches augmented."""
    return _class_split(
        "cifar100", 100, CIFAR100_STATS, True, n_experiences, return_task_id, seed,
        fixed_class_order,
        dict(root=root, download=download, mirror=mirror, verify_checksums=verify_checksums),
    )


def PermutedMNIST(  # noqa: N802
    n_experiences: int = 10,
    *,
    return_task_id: bool = False,
    seed: int | None = 0,
    root: PathLike = None,
    download: bool = False,
    mirror: PathLike = None,
    verify_checksums: bool = True,
) -> Benchmark:
    """All 10 MNIST classes in every experience, each with its own fixed pixel permutation.

    The permutations are Avalanche's: ``numpy.random.RandomState(seed).permutation(784)`` drawn
    once per experience, the first one included (``seed=None``: unseeded). Each stream is one
    uint8 storage holding every experience's permuted copy (``n_experiences`` x 55 MB for MNIST)
    and experiences are index views on it. A lazily applied per-experience permutation would
    store the images once, but a transform belongs to a dataset, not to a sample, so a replay
    buffer mixing experiences would permute old samples with the current experience's
    permutation; materialised copies make every sample carry its own, and replay stays
    index-only on shared storage.
    """
    if not isinstance(n_experiences, int) or isinstance(n_experiences, bool) or n_experiences < 1:
        raise BenchmarkConfigError(
            f"benchmark.n_experiences={n_experiences!r}: must be a positive integer "
            f"(one pixel permutation per experience)"
        )
    data = load_vision_tensors(
        "mnist", root, download=download, mirror=mirror, verify_checksums=verify_checksums
    )
    rng = np.random.RandomState(seed)
    n_pixels = data.train_x[0].numel()
    perms = [torch.from_numpy(rng.permutation(n_pixels)) for _ in range(n_experiences)]
    normalise = NormalizePixels(*MNIST_STATS)
    streams = [
        _permuted_stream(name, x, y, perms, return_task_id, normalise)
        for name, x, y in (("train", data.train_x, data.train_y),
                           ("test", data.test_x, data.test_y))
    ]
    return Benchmark(
        *streams, n_classes=10, classes_order=list(range(10)), return_task_id=return_task_id,
        name="permuted_mnist",
    )


def _class_split(
    source: str,
    n_classes: int,
    stats: tuple[tuple[float, ...], tuple[float, ...]],
    augment: bool,
    n_experiences: int,
    return_task_id: bool,
    seed: int | None,
    fixed_class_order: Sequence[int] | None,
    location: dict,
) -> Benchmark:
    # validate the split before loading: a bad setting should not wait for (or hide behind) data
    resolve_class_order(n_classes, n_experiences, seed, fixed_class_order)
    data = load_vision_tensors(source, **location)
    normalise = NormalizePixels(*stats)
    augmentation = None
    if augment:
        black = [-m / s for m, s in zip(*stats, strict=True)]
        augmentation = RandomCropFlip(CIFAR_PADDING, fill=black)
    return nc_benchmark(
        ClassificationDataset(
            data.train_x, data.train_y, transform=normalise, train_transform=augmentation
        ),
        ClassificationDataset(data.test_x, data.test_y, transform=normalise),
        n_experiences,
        n_classes=n_classes,
        return_task_id=return_task_id,
        seed=seed,
        fixed_class_order=fixed_class_order,
        name=f"split_{source}",
    )


def _permuted_stream(
    name: str,
    x: torch.Tensor,
    y: torch.Tensor,
    perms: list[torch.Tensor],
    return_task_id: bool,
    transform: NormalizePixels,
) -> Stream:
    n = len(y)
    flat = x.flatten(1)
    storage = torch.empty((len(perms) * n, flat.shape[1]), dtype=x.dtype)
    for i, perm in enumerate(perms):
        storage[i * n : (i + 1) * n] = flat[:, perm]
    tasks = torch.arange(len(perms)).repeat_interleave(n) if return_task_id else None
    data = ClassificationDataset(
        storage.view(-1, *x.shape[1:]), y.repeat(len(perms)), tasks, transform=transform
    )
    classes = sorted(y.unique().tolist())
    return Stream(name, [
        Experience(
            data.subset(torch.arange(i * n, (i + 1) * n)), i, classes,
            i if return_task_id else 0, name,
        )
        for i in range(len(perms))
    ])
