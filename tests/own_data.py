"""Small files and folders of users' own data, written by the tests that need them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def separable(n_classes: int = 10, per_class: int = 12, features: int = 8, seed: int = 0):
    """Features that identify their class (one-hot block plus noise) and labels."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    x = rng.normal(size=(len(y), features)).astype(np.float32)
    x[np.arange(len(y)), y % features] += 4.0
    return x, y


def write_tensors_file(folder: Path, name: str = "data.npz", n_classes: int = 10,
                       **extra: np.ndarray) -> Path:
    """A train/test tensors file (``.npz`` with numpy, ``.pt`` with torch.save)."""
    x, y = separable(n_classes)
    xt, yt = separable(n_classes, per_class=4, seed=1)
    arrays = {"train_x": x, "train_y": y, "test_x": xt, "test_y": yt, **extra}
    path = folder / name
    if path.suffix == ".npz":
        np.savez(path, **arrays)
    else:
        import torch

        torch.save({k: torch.as_tensor(v) for k, v in arrays.items()}, path)
    return path


def write_image_folder(root: Path, n_classes: int = 10, per_class: int = 3,
                       test_per_class: int = 1, size: tuple[int, int] = (9, 7)) -> Path:
    """PNGs in ImageFolder's layout (``train/`` and ``test/``), one colour per class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", test_per_class)):
        for c in range(n_classes):
            folder = root / split / f"class_{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                shade = rng.uniform(0.6, 1.0, size=(size[1], size[0], 1))
                pixels = (np.array(COLOURS[c % len(COLOURS)]) * shade).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"img_{i}.png")
    return root
