"""What a buffer holds, as plain dicts the runner can log (per-class and per-group counts)."""

from __future__ import annotations

from collections.abc import Hashable

import torch

from cl_runner.buffers.balanced import BalancedExemplarsBuffer
from cl_runner.buffers.base import ExemplarsBuffer
from cl_runner.data.dataset import ClassificationDataset


def buffer_class_counts(buffer: ExemplarsBuffer | ClassificationDataset) -> dict[int, int]:
    """Class -> number of stored samples, classes ascending (only classes present)."""
    data = buffer.buffer if isinstance(buffer, ExemplarsBuffer) else buffer
    classes, counts = torch.unique(data.targets, return_counts=True)
    return dict(zip(classes.tolist(), counts.tolist(), strict=True))


def group_sizes(buffer: ExemplarsBuffer) -> dict[Hashable, int]:
    """Group key -> stored samples, in ``buffer_groups`` order; ``{}`` for ungrouped buffers."""
    if not isinstance(buffer, BalancedExemplarsBuffer):
        return {}
    return {key: len(group.buffer) for key, group in buffer.buffer_groups.items()}
