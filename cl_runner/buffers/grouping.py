"""Vectorised splitting and joining of index views, shared by the grouped buffers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from cl_runner.data.dataset import ClassificationDataset, empty_dataset


def split_by_label(data: ClassificationDataset, labels: Tensor) -> dict[int, ClassificationDataset]:
    """Label -> subset of ``data`` with that label, labels ascending, data order kept inside.

    One stable argsort and one ``unique_consecutive`` instead of a Python loop per sample.
    """
    if len(labels) == 0:
        return {}
    order = torch.argsort(labels, stable=True)
    values, counts = torch.unique_consecutive(labels.index_select(0, order), return_counts=True)
    parts = torch.split(order, counts.tolist())
    return {int(v): data.subset(p) for v, p in zip(values.tolist(), parts, strict=True)}


def concat_datasets(parts: Sequence[ClassificationDataset]) -> ClassificationDataset:
    """``parts`` joined in order (empty ones skipped), as one view on the stream when they
    all share its storage.

    Shared storage: one ``torch.cat`` of the index tensors (``_view`` is the dataset's own
    view constructor; ``concat`` pair by pair would cost a view per group). Otherwise a
    pairwise tree of ``concat`` calls, O(total * log G) rather than O(total * G).
    """
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_dataset()
    first = parts[0]
    if all(first.shares_storage(p) for p in parts):
        return first._view(torch.cat([p.storage_indices for p in parts]))
    layer = list(parts)
    while len(layer) > 1:
        paired = [a.concat(b) for a, b in zip(layer[::2], layer[1::2], strict=False)]
        layer = paired + layer[len(paired) * 2 :]
    return layer[0]
