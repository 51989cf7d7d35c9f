"""Batched image transforms: whole gathered mini-batches, torch ops only, no per-sample Python.

They are small picklable classes (DataLoader workers and checkpoints can carry them) that run on
whatever device the batch is on; per-channel constants are built once per device and cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import lazy_loader as lazy

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy.load("torch")


@lru_cache(maxsize=64)
def _channel_constant(values: tuple[float, ...], device: torch.device) -> Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device).view(1, -1, 1, 1)


class NormalizePixels:
    """uint8 images ``(B, C, H, W)`` -> float ``(x / 255 - mean) / std`` per channel.

    Storage stays uint8 (4x less memory than float); this runs on every gathered batch as one
    fused multiply-add.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != len(std):
            raise ValueError(f"mean and std need one value per channel, got {mean} and {std}")
        self.scale = tuple(1.0 / (255.0 * s) for s in std)
        self.shift = tuple(-m / s for m, s in zip(mean, std, strict=True))

    def __call__(self, x: Tensor) -> Tensor:
        scale = _channel_constant(self.scale, x.device)
        shift = _channel_constant(self.shift, x.device)
        return torch.addcmul(shift, x.to(torch.float32), scale)

    def __repr__(self) -> str:
        return f"NormalizePixels(scale={self.scale}, shift={self.shift})"


class RandomCropFlip:
    """Per-sample random crop after ``padding`` and a random horizontal flip, for a batch.

    The batched equivalent of torchvision's ``RandomCrop(size, padding)`` followed by
    ``RandomHorizontalFlip(flip_p)``: offsets uniform in ``0..2*padding``, one flip draw per
    sample, from torch's RNG on the batch's device (seeded runs repeat exactly). ``fill`` is the
    padding value per channel; since it runs after normalisation, pass the normalised value of
    black to pad like torchvision does on raw images.
    """

    def __init__(
        self, padding: int = 4, fill: Sequence[float] = (0.0,), flip_p: float = 0.5
    ) -> None:
        self.padding = int(padding)
        self.fill = tuple(float(f) for f in fill)
        self.flip_p = float(flip_p)

    def __call__(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        p = self.padding
        padded = x.new_empty(b, c, h + 2 * p, w + 2 * p)
        padded.copy_(_channel_constant(self.fill, x.device).expand_as(padded))
        padded[:, :, p : p + h, p : p + w] = x
        top = torch.randint(0, 2 * p + 1, (b, 1), device=x.device)
        left = torch.randint(0, 2 * p + 1, (b, 1), device=x.device)
        rows = top + torch.arange(h, device=x.device)
        cols = left + torch.arange(w, device=x.device)
        flip = torch.rand(b, 1, device=x.device) < self.flip_p
        cols = torch.where(flip, cols.flip(1), cols)
        batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
        channel = torch.arange(c, device=x.device).view(1, c, 1, 1)
        return padded[batch, channel, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, fill={self.fill}, flip_p={self.flip_p})"
