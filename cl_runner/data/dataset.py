"""Tensor-backed classification datasets.

A dataset is a view on shared storage: three aligned tensors (inputs, class targets, task
labels) plus an optional index tensor. Subsets of subsets compose their index tensors, and
concatenations of views on the same storage concatenate indices, so a buffer built from many
updates is one gather away from its samples, never a chain of wrappers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

BatchTransform = Callable[[Tensor], Tensor]


class ClassificationDataset(Dataset):
    """Samples ``(x, y, t)`` held as tensors; ``transform`` runs on whole gathered batches.

    ``transform`` applies in both groups (e.g. normalising uint8 pixels), ``train_transform``
    only in the ``train()`` group (batched augmentation). ``indices`` selects rows of the
    storage; ``None`` means all rows in order.
    """

    def __init__(
        self,
        x: Tensor,
        targets: Tensor | Sequence[int],
        task_labels: Tensor | Sequence[int] | int | None = None,
        *,
        indices: Tensor | None = None,
        transform: BatchTransform | None = None,
        train_transform: BatchTransform | None = None,
        transform_group: str = "train",
    ) -> None:
        targets = torch.as_tensor(targets, dtype=torch.long)
        if task_labels is None:
            task_labels = 0
        if isinstance(task_labels, int):
            task_labels = torch.full_like(targets, task_labels)
        task_labels = torch.as_tensor(task_labels, dtype=torch.long)
        if not (len(x) == len(targets) == len(task_labels)):
            raise ValueError(
                f"x, targets and task_labels must have the same length, got "
                f"{len(x)}, {len(targets)}, {len(task_labels)}"
            )
        self._x = x
        self._y = targets.to(x.device)
        self._t = task_labels.to(x.device)
        self._idx = None if indices is None else indices.to(device=x.device, dtype=torch.long)
        self.transform = transform
        self.train_transform = train_transform
        self.transform_group = transform_group

    # -- size and sample access -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._y) if self._idx is None else len(self._idx)

    @property
    def storage_indices(self) -> Tensor:
        """Rows of the shared storage this view holds, in order."""
        if self._idx is None:
            return torch.arange(len(self._y), device=self._y.device)
        return self._idx

    def gather(self, positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One batch ``(x, y, t)`` for view positions ``positions``, transforms applied."""
        rows = positions if self._idx is None else self._idx[positions]
        x = self._x[rows]
        if self.transform is not None:
            x = self.transform(x)
        if self.transform_group == "train" and self.train_transform is not None:
            x = self.train_transform(x)
        return x, self._y[rows], self._t[rows]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        x, y, t = self.gather(torch.tensor([int(i)], device=self._y.device))
        return x[0], y[0], t[0]

    def __getitems__(self, positions: Sequence[int] | Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Batched fetch used by ``torch.utils.data.DataLoader`` (one gather per batch)."""
        return self.gather(torch.as_tensor(positions, dtype=torch.long, device=self._y.device))

    # -- per-sample attributes ------------------------------------------------------------
    @property
    def targets(self) -> Tensor:
        return self._y if self._idx is None else self._y[self._idx]

    @property
    def targets_task_labels(self) -> Tensor:
        return self._t if self._idx is None else self._t[self._idx]

    @property
    def task_set(self) -> dict[int, ClassificationDataset]:
        """Task label -> subset with that label, in ascending label order (Avalanche's name)."""
        labels = self.targets_task_labels
        return {int(t): self.subset(torch.nonzero(labels == t).flatten()) for t in labels.unique()}

    @property
    def device(self) -> torch.device:
        return self._x.device

    # -- views ---------------------------------------------------------------------------
    def _view(self, indices: Tensor | None) -> ClassificationDataset:
        view = ClassificationDataset.__new__(ClassificationDataset)
        view.__dict__.update(self.__dict__)
        view._idx = indices
        return view

    def subset(self, indices: Sequence[int] | Tensor) -> ClassificationDataset:
        """The samples at view positions ``indices`` (in that order), sharing storage."""
        pos = torch.as_tensor(indices, dtype=torch.long, device=self._y.device).flatten()
        return self._view(pos if self._idx is None else self._idx[pos])

    def shares_storage(self, other: ClassificationDataset) -> bool:
        return self._x is other._x and self._y is other._y and self._t is other._t

    def concat(self, other: ClassificationDataset) -> ClassificationDataset:
        """``self`` followed by ``other``; index-only when both view the same storage."""
        if self.shares_storage(other):
            return self._view(torch.cat([self.storage_indices, other.storage_indices]))
        if len(self) == 0:
            return other._view(other._idx)
        if len(other) == 0:
            return self._view(self._idx)
        other_x = other._x[other.storage_indices].to(self.device)
        x = torch.cat([self._x[self.storage_indices], other_x])
        y = torch.cat([self.targets, other.targets.to(self.device)])
        t = torch.cat([self.targets_task_labels, other.targets_task_labels.to(self.device)])
        return ClassificationDataset(
            x, y, t, transform=self.transform, train_transform=self.train_transform,
            transform_group=self.transform_group,
        )

    def __add__(self, other: ClassificationDataset) -> ClassificationDataset:
        return self.concat(other)

    def empty(self) -> ClassificationDataset:
        """An empty view on the same storage (what a buffer starts from)."""
        return self._view(torch.empty(0, dtype=torch.long, device=self._y.device))

    def train(self) -> ClassificationDataset:
        """The same samples with training augmentation switched on."""
        view = self._view(self._idx)
        view.transform_group = "train"
        return view

    def eval(self) -> ClassificationDataset:
        """The same samples without training augmentation."""
        view = self._view(self._idx)
        view.transform_group = "eval"
        return view

    def to(self, device: torch.device | str) -> ClassificationDataset:
        """A copy whose storage lives on ``device`` (the whole storage moves once)."""
        view = self._view(None if self._idx is None else self._idx.to(device))
        view._x, view._y, view._t = self._x.to(device), self._y.to(device), self._t.to(device)
        return view

    def __repr__(self) -> str:
        return (
            f"ClassificationDataset(len={len(self)}, x={tuple(self._x.shape[1:])}, "
            f"group={self.transform_group!r})"
        )


def empty_dataset(
    shape: Sequence[int] = (), dtype: torch.dtype = torch.float32
) -> ClassificationDataset:
    """An empty dataset with no storage, for buffers that have not seen data yet."""
    x = torch.empty((0, *shape), dtype=dtype)
    return ClassificationDataset(x, torch.empty(0, dtype=torch.long))
