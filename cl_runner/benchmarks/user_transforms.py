"""Avalanche-style per-sample transforms (torchvision's) applied to our gathered batches.

Avalanche applies ``train_transform`` / ``eval_transform`` to one sample at a time. Our data
are tensors gathered a batch at a time, so a transform is turned into a batched callable:

- ``ToTensor`` steps are dropped: samples are tensors already, and an image stored as uint8
  is first scaled to float in [0, 1], which is exactly what ``ToTensor`` gives for it;
- a ``Normalize`` (or a ``Compose`` of ``Normalize`` steps) runs on the whole batch at once;
- anything else runs per sample on the float ``(C, H, W)`` tensors (the same semantics as in
  Avalanche, random augmentations included; slower than a batched transform).

Every object here is picklable, so DataLoader workers and checkpoints can carry it. No torch is
imported at module import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy.load("torch")

BatchTransform = Callable[["Tensor"], "Tensor"]
_BATCH_SAFE = {"Normalize"}  # torchvision transforms that act on (B, C, H, W) unchanged
_TO_TENSOR = {"ToTensor"}


class AvalancheDefault:
    """Marker default of a benchmark's ``train_transform`` / ``eval_transform``: the
    dataset's own normalisation (and augmentation), as Avalanche's defaults do."""

    def __repr__(self) -> str:
        return "<the benchmark's default transform>"

    def __reduce__(self) -> str:
        return "DEFAULT_TRANSFORM"


DEFAULT_TRANSFORM = AvalancheDefault()


class ToUnitFloat:
    """uint8 pixels -> float32 in [0, 1] (what ``ToTensor`` gives for an 8-bit image);
    float data pass unchanged."""

    def __call__(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:
            return x.to(torch.float32).div_(255.0)
        return x if x.is_floating_point() else x.to(torch.float32)

    def __repr__(self) -> str:
        return "ToUnitFloat()"


class Chain:
    """Batched callables applied in order."""

    def __init__(self, steps: Sequence[BatchTransform]) -> None:
        self.steps = list(steps)

    def __call__(self, x: Tensor) -> Tensor:
        for step in self.steps:
            x = step(x)
        return x

    def __repr__(self) -> str:
        return f"Chain({self.steps!r})"


class PerSample:
    """A per-sample transform run on each sample of a batch; the results are stacked."""

    def __init__(self, transform: Callable[[Any], Any]) -> None:
        self.transform = transform

    def __call__(self, x: Tensor) -> Tensor:
        if len(x) == 0:
            return x
        return torch.stack([torch.as_tensor(self.transform(sample)) for sample in x])

    def __repr__(self) -> str:
        return f"PerSample({self.transform!r})"


def _is_torchvision(step: Any, names: set[str]) -> bool:
    kind = type(step)
    return kind.__name__ in names and kind.__module__.startswith("torchvision.transforms")


def _steps(transform: Any) -> list[Any]:
    """A ``Compose``'s steps, flattened; any other transform as one step."""
    inner = getattr(transform, "transforms", None)
    if type(transform).__name__ == "Compose" and isinstance(inner, list | tuple):
        return [s for step in inner for s in _steps(step)]
    return [transform]


def batch_transform(transform: Any, *, scale_uint8: bool = False) -> BatchTransform | None:
    """The batched equivalent of an Avalanche (torchvision) per-sample ``transform``.

    ``scale_uint8``: the data are stored as uint8 images, so samples are first scaled to float
    in [0, 1] (what the dataset's ``ToTensor`` would have given). ``None`` gives None with
    ``scale_uint8`` off (no transform), else just the scaling.
    """
    if transform is not None and not callable(transform):
        raise TypeError(f"a transform must be callable or None, got {transform!r}")
    steps = [] if transform is None else _steps(transform)
    steps = [s for s in steps if not _is_torchvision(s, _TO_TENSOR)]
    prefix: list[BatchTransform] = [ToUnitFloat()] if scale_uint8 else []
    if not steps:
        return Chain(prefix) if prefix else None
    if all(_is_torchvision(s, _BATCH_SAFE) for s in steps):
        return Chain([*prefix, *steps])
    per_sample = steps[0] if len(steps) == 1 else Chain(steps)
    return Chain([*prefix, PerSample(per_sample)])
