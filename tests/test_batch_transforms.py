"""Batched normalisation and CIFAR augmentation: values, windows, flips, seeded repeatability."""

from __future__ import annotations

import pickle

import torch
import torch.nn.functional as F

from cl_runner.benchmarks.batch_transforms import NormalizePixels, RandomCropFlip


def test_normalize_pixels_per_channel():
    x = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    out = NormalizePixels(mean, std)(x)
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1
    )
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected)


def test_crop_flip_outputs_are_windows_of_the_padded_batch():
    x = torch.randn(64, 3, 8, 8)
    fill = (-1.0, -2.0, -3.0)
    out = RandomCropFlip(padding=2, fill=fill)(x)
    assert out.shape == x.shape
    padded = F.pad(x, (2, 2, 2, 2))
    for c, value in enumerate(fill):
        border = torch.ones(12, 12, dtype=torch.bool)
        border[2:10, 2:10] = False
        padded[:, c][:, border] = value
    flips = 0
    for i in range(len(x)):
        windows = [
            padded[i, :, top : top + 8, left : left + 8]
            for top in range(5) for left in range(5)
        ]
        plain = any(torch.equal(out[i], w) for w in windows)
        flipped = any(torch.equal(out[i], w.flip(-1)) for w in windows)
        assert plain or flipped
        flips += flipped and not plain
    assert 0 < flips < len(x)


def test_crop_flip_repeats_under_the_same_seed_and_pickles():
    x = torch.randn(16, 3, 32, 32)
    augment = pickle.loads(pickle.dumps(RandomCropFlip(4)))
    torch.manual_seed(7)
    first = augment(x)
    torch.manual_seed(7)
    assert torch.equal(first, augment(x))
    assert not torch.equal(first, augment(x))


def test_crop_flip_degenerate_settings():
    x = torch.randn(4, 1, 5, 5)
    assert torch.equal(RandomCropFlip(padding=0, flip_p=0.0)(x), x)
    assert torch.equal(RandomCropFlip(padding=0, flip_p=1.0)(x), x.flip(-1))
