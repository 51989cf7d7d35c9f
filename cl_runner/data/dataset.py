"""Tensor-backed classification datasets.

A dataset is a view on shared storage: three aligned tensors (inputs, class targets, task
labels) plus an optional index tensor. Subsets of subsets compose their index tensors, and
concatenations of views on the same storage concatenate indices, so a buffer built from many
updates is one gather away from its samples, never a chain of wrappers.

A view may also carry a *payload*: named per-sample tensors aligned with its positions (DER's
stored logits, a score per exemplar). Subsets and concatenations carry the payload along, so
a buffer keeps it next to its exemplars through every update and resize.

Storage a benchmark builds is *named* (``"split_fmnist/train"``); the state of a view on named
storage is its name and indices, so a checkpoint stays small and a rebuilt benchmark resolves
it again. Views on unnamed storage save their samples.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

BatchTransform = Callable[[Tensor], Tensor]


class UnknownStorageError(LookupError):
    """A dataset state names storage that no live benchmark of this process has built."""


class _Storage:
    """What views share: the tensors, their transforms and their name (if any)."""

    __slots__ = ("x", "y", "t", "name", "transform", "train_transform", "eval_transform",
                 "__weakref__")

    def __init__(
        self, x: Tensor, y: Tensor, t: Tensor, name: str | None,
        transform: BatchTransform | None, train_transform: BatchTransform | None,
        eval_transform: BatchTransform | None = None,
    ) -> None:
        self.x, self.y, self.t, self.name = x, y, t, name
        self.transform, self.train_transform = transform, train_transform
        self.eval_transform = eval_transform


_NAMED: weakref.WeakValueDictionary[str, _Storage] = weakref.WeakValueDictionary()


class ClassificationDataset(Dataset):
    """Samples ``(x, y, t)`` held as tensors; ``transform`` runs on whole gathered batches.

    ``transform`` applies in both groups (e.g. normalising uint8 pixels), then
    ``train_transform`` only in the ``train()`` group (batched augmentation) and
    ``eval_transform`` only in the ``eval()`` group (Avalanche's per-group transforms map to
    these two). ``indices`` selects rows of the storage; ``None`` means all rows in order.
    ``name`` registers the storage for checkpoints (see the module docstring).
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
        name: str | None = None,
        eval_transform: BatchTransform | None = None,
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
        self._storage = _Storage(
            x, targets.to(x.device), task_labels.to(x.device), name, transform, train_transform,
            eval_transform,
        )
        if name is not None:
            _NAMED[name] = self._storage
        self._idx = None if indices is None else indices.to(device=x.device, dtype=torch.long)
        self._payload: dict[str, Tensor] = {}
        self.transform_group = transform_group

    @property
    def transform(self) -> BatchTransform | None:
        """Batched transform of every gathered batch (shared by all views on the storage)."""
        return self._storage.transform

    @transform.setter
    def transform(self, value: BatchTransform | None) -> None:
        self._storage.transform = value

    @property
    def train_transform(self) -> BatchTransform | None:
        """Batched augmentation in the ``train()`` group (shared by all views)."""
        return self._storage.train_transform

    @train_transform.setter
    def train_transform(self, value: BatchTransform | None) -> None:
        self._storage.train_transform = value

    @property
    def eval_transform(self) -> BatchTransform | None:
        """Batched transform in the ``eval()`` group only (shared by all views)."""
        return self._storage.eval_transform

    @eval_transform.setter
    def eval_transform(self, value: BatchTransform | None) -> None:
        self._storage.eval_transform = value

    # -- size and sample access -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._storage.y) if self._idx is None else len(self._idx)

    @property
    def storage_indices(self) -> Tensor:
        """Rows of the shared storage this view holds, in order."""
        if self._idx is None:
            return torch.arange(len(self._storage.y), device=self.device)
        return self._idx

    @property
    def storage_name(self) -> str | None:
        return self._storage.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one stored input sample."""
        return tuple(self._storage.x.shape[1:])

    @property
    def sample_nbytes(self) -> int:
        """Bytes one stored sample takes: its input in the storage dtype, target, task label."""
        s = self._storage
        if len(s.y) == 0:
            return 0
        return sum(t[0].numel() * t.element_size() for t in (s.x, s.y, s.t))

    def gather(self, positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One batch ``(x, y, t)`` for view positions ``positions``, transforms applied."""
        rows = positions if self._idx is None else self._idx[positions]
        storage = self._storage
        x = storage.x[rows]
        if storage.transform is not None:
            x = storage.transform(x)
        if self.transform_group == "train":
            if storage.train_transform is not None:
                x = storage.train_transform(x)
        elif storage.eval_transform is not None:
            x = storage.eval_transform(x)
        return x, self._storage.y[rows], self._storage.t[rows]

    def gather_payload(self, positions: Tensor) -> dict[str, Tensor]:
        """The payload tensors at view positions ``positions``."""
        return {key: value[positions] for key, value in self._payload.items()}

    def tensors(self) -> tuple[Tensor, Tensor, Tensor]:
        """The view's raw stored ``(x, targets, task labels)``, without transforms."""
        rows = self.storage_indices
        s = self._storage
        return s.x[rows], s.y[rows], s.t[rows]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        x, y, t = self.gather(torch.tensor([int(i)], device=self.device))
        return x[0], y[0], t[0]

    def __getitems__(self, positions: Sequence[int]) -> list[tuple[Tensor, Tensor, Tensor]]:
        """torch's batched fetch: one gather, returned as the list of samples it expects."""
        x, y, t = self.gather(torch.as_tensor(positions, dtype=torch.long, device=self.device))
        return list(zip(x, y, t, strict=True))

    # -- per-sample attributes ------------------------------------------------------------
    @property
    def targets(self) -> Tensor:
        return self._storage.y if self._idx is None else self._storage.y[self._idx]

    @property
    def targets_task_labels(self) -> Tensor:
        return self._storage.t if self._idx is None else self._storage.t[self._idx]

    @property
    def payload(self) -> Mapping[str, Tensor]:
        """Named per-sample tensors aligned with this view's positions (read-only mapping)."""
        return dict(self._payload)

    def with_payload(self, **tensors: Tensor) -> ClassificationDataset:
        """The same samples carrying ``tensors`` (one row per sample) as payload."""
        for key, value in tensors.items():
            if len(value) != len(self):
                raise ValueError(f"payload {key!r} has {len(value)} rows for {len(self)} samples")
        view = self._view(self._idx)
        view._payload = {**self._payload, **tensors}
        return view

    @property
    def task_set(self) -> dict[int, ClassificationDataset]:
        """Task label -> subset with that label, in ascending label order (Avalanche's name)."""
        labels = self.targets_task_labels
        return {int(t): self.subset(torch.nonzero(labels == t).flatten()) for t in labels.unique()}

    @property
    def device(self) -> torch.device:
        return self._storage.x.device

    # -- views ---------------------------------------------------------------------------
    def _view(self, indices: Tensor | None) -> ClassificationDataset:
        view = ClassificationDataset.__new__(ClassificationDataset)
        view.__dict__.update(self.__dict__)
        view._idx = indices
        view._payload = {}
        return view

    def storage_view(self) -> ClassificationDataset:
        """A view on all rows of this dataset's storage, in storage order."""
        return self._view(None)

    def subset(self, indices: Sequence[int] | Tensor) -> ClassificationDataset:
        """The samples at view positions ``indices`` (in that order), sharing storage."""
        pos = torch.as_tensor(indices, dtype=torch.long, device=self.device).flatten()
        view = self._view(pos if self._idx is None else self._idx[pos])
        view._payload = {key: value[pos] for key, value in self._payload.items()}
        return view

    def shares_storage(self, other: ClassificationDataset) -> bool:
        return self._storage is other._storage

    def concat(self, other: ClassificationDataset) -> ClassificationDataset:
        """``self`` followed by ``other``; index-only when both view the same storage."""
        return ClassificationDataset.concat_all([self, other])

    @staticmethod
    def concat_all(parts: Sequence[ClassificationDataset]) -> ClassificationDataset:
        """``parts`` joined in order (empty ones skipped).

        Views on one storage: one ``torch.cat`` of their indices. Otherwise the samples are
        copied into new storage once (on the first part's device, with its transforms).
        Payloads are joined too; non-empty parts must carry the same payload names.
        """
        filled = [p for p in parts if len(p)]
        if not filled:
            return parts[0]._view(parts[0]._idx) if parts else empty_dataset()
        first = filled[0]
        keys = set(first._payload)
        for part in filled[1:]:
            if set(part._payload) != keys:
                raise ValueError(
                    f"cannot join datasets with payloads {sorted(keys)} and "
                    f"{sorted(part._payload)}"
                )
        if all(first.shares_storage(p) for p in filled):
            joined = first._view(torch.cat([p.storage_indices for p in filled]))
        else:
            device = first.device
            x, y, t = (torch.cat([p.tensors()[i].to(device) for p in filled]) for i in range(3))
            joined = ClassificationDataset(
                x, y, t, transform=first.transform, train_transform=first.train_transform,
                transform_group=first.transform_group, eval_transform=first.eval_transform,
            )
        joined._payload = {k: torch.cat([p._payload[k].to(first.device) for p in filled])
                           for k in keys}
        return joined

    def __add__(self, other: ClassificationDataset) -> ClassificationDataset:
        return self.concat(other)

    def empty(self) -> ClassificationDataset:
        """An empty view on the same storage (what a buffer starts from)."""
        return self._view(torch.empty(0, dtype=torch.long, device=self.device))

    def train(self) -> ClassificationDataset:
        """The same samples with training augmentation switched on."""
        return self._regrouped("train")

    def eval(self) -> ClassificationDataset:
        """The same samples without training augmentation."""
        return self._regrouped("eval")

    def _regrouped(self, group: str) -> ClassificationDataset:
        view = self._view(self._idx)
        view._payload = dict(self._payload)
        view.transform_group = group
        return view

    def to(self, device: torch.device | str) -> ClassificationDataset:
        """A copy whose storage lives on ``device`` (the whole storage moves once)."""
        s = self._storage
        view = self._view(None if self._idx is None else self._idx.to(device))
        view._storage = _Storage(s.x.to(device), s.y.to(device), s.t.to(device), s.name,
                                 s.transform, s.train_transform, s.eval_transform)
        if s.name is not None:
            _NAMED[s.name] = view._storage
        view._payload = {k: v.to(device) for k, v in self._payload.items()}
        return view

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (loads with ``torch.load(weights_only=True)``)."""
        state: dict[str, Any] = {
            "transform_group": self.transform_group,
            "payload": {k: v.cpu() for k, v in self._payload.items()},
        }
        if self._storage.name is not None:
            state.update(storage=self._storage.name, indices=self.storage_indices.cpu())
        else:
            x, y, t = self.tensors()
            state.update(x=x.cpu(), targets=y.cpu(), task_labels=t.cpu())
        return state

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> ClassificationDataset:
        """The dataset ``state_dict`` described: a view on live named storage, or new data.

        Views on named storage get its transforms; datasets restored from their samples have
        none (code is not state).
        """
        if "storage" in state:
            storage = _NAMED.get(state["storage"])
            if storage is None:
                raise UnknownStorageError(
                    f"the saved state refers to data {state['storage']!r}, which this process "
                    "has not loaded (build the same benchmark first)"
                )
            view = cls.__new__(cls)
            view.__dict__.update(_storage=storage, _idx=state["indices"].to(storage.x.device))
        else:
            view = cls(state["x"], state["targets"], state["task_labels"])
        view.transform_group = state["transform_group"]
        view._payload = {k: v.to(view.device) for k, v in state["payload"].items()}
        return view

    def __repr__(self) -> str:
        return (
            f"ClassificationDataset(len={len(self)}, x={self.input_shape}, "
            f"group={self.transform_group!r})"
        )


def empty_dataset(
    shape: Sequence[int] = (), dtype: torch.dtype = torch.float32
) -> ClassificationDataset:
    """An empty dataset with no storage, for buffers that have not seen data yet."""
    x = torch.empty((0, *shape), dtype=dtype)
    return ClassificationDataset(x, torch.empty(0, dtype=torch.long))
