"""Vectorised splitting of index views by a label, shared by the grouped buffers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader as lazy

if TYPE_CHECKING:
    from torch import Tensor

    from cl_runner.data.dataset import ClassificationDataset

torch = lazy.load("torch")


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
