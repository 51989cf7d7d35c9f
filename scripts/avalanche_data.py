"""Split Fashion-MNIST for the Avalanche side of the comparisons, set up as cl_runner's.

Shared by scripts/avalanche_er.py, avalanche_strategies.py and avalanche_online.py (run with
the Python of a virtualenv that has Avalanche): the Debian files decompressed once into
torchvision's layout, cl_runner's class order for a seed, and the same normalisation.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path
from typing import Any

import torch

MEAN, STD = 0.2860, 0.3530
DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DATA_ROOT = Path("/tmp/ava_results/data")
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def prepare_data_root(root: Path = DEFAULT_DATA_ROOT, source: Path = DEBIAN_FMNIST) -> Path:
    """Decompress the Debian IDX files once into ``root/FashionMNIST/raw``; return ``root``."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        target = raw / name
        if target.exists():
            continue
        tmp = raw / f".{name}.{os.getpid()}.tmp"
        with gzip.open(source / f"{name}.gz", "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(tmp, target)  # atomic: concurrent runs never see a half-written file
    return root


def class_order(seed: int) -> list[int]:
    """cl_runner's class order for ``seed`` (``SplitFMNIST(seed=seed)``)."""
    return torch.randperm(10, generator=torch.Generator().manual_seed(seed)).tolist()


def split_fmnist(seed: int, data_root: str | Path | None = None,
                 task_incremental: bool = False) -> Any:
    """Avalanche's SplitFMNIST in 5 experiences with cl_runner's class order and normalisation."""
    from avalanche.benchmarks.classic import SplitFMNIST
    from torchvision import transforms

    root = Path(data_root) if data_root else prepare_data_root()
    normalise = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    return SplitFMNIST(
        n_experiences=5, return_task_id=task_incremental, fixed_class_order=class_order(seed),
        dataset_root=str(root), train_transform=normalise, eval_transform=normalise,
    )
