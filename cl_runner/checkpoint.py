"""Resume points: after each experience, everything needed to continue bit-for-bit.

A checkpoint holds the model, optimizer, buffer contents, every RNG state, the metrics so
far and the MLflow run id. It contains only tensors and plain Python values so that it loads
with ``torch.load(..., weights_only=True)``. Buffer datasets that are views on the
benchmark's storage are saved as their index tensors; the rebuilt benchmark (same config,
same seed) provides the storage again.
"""

from __future__ import annotations

import importlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cl_runner.data.dataset import ClassificationDataset

CHECKPOINT_FILE = "checkpoint.pt"
_BUFFER_MODULE = "cl_runner.buffers"


# -- RNG states ------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Torch (CPU and CUDA), numpy and python RNG states as plain values and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- buffer contents -------------------------------------------------------------------------
def _encode(value: Any, storages: list[ClassificationDataset]) -> Any:
    if isinstance(value, ClassificationDataset):
        for k, source in enumerate(storages):
            if value.shares_storage(source):
                return {"__view__": k, "indices": value.storage_indices.cpu(),
                        "group": value.transform_group}
        rows = value.storage_indices
        return {"__data__": [value._x[rows].cpu(), value.targets.cpu(),
                             value.targets_task_labels.cpu()]}
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, set):
        return {"__set__": [_encode(v, storages) for v in value]}
    if isinstance(value, list | tuple):
        items = [_encode(v, storages) for v in value]
        return {"__list__": items, "tuple": isinstance(value, tuple)}
    if isinstance(value, dict):
        pairs = [[_encode(k, storages), _encode(v, storages)] for k, v in value.items()]
        return {"__dict__": pairs}
    cls = type(value)
    if cls.__module__.startswith(_BUFFER_MODULE) and "Selection" not in cls.__name__:
        return {"__obj__": f"{cls.__module__}:{cls.__qualname__}",
                "state": {k: _encode(v, storages) for k, v in vars(value).items()}}
    return {"__live__": True}  # model, selection strategy: taken from the rebuilt buffer


def _decode(value: Any, name: str, root: Any, storages: list[ClassificationDataset]) -> Any:
    if not isinstance(value, dict):
        return value
    if "__view__" in value:
        source = storages[value["__view__"]]
        view = source._view(value["indices"].to(source.device))
        view.transform_group = value["group"]
        return view
    if "__data__" in value:
        x, y, t = value["__data__"]
        return ClassificationDataset(x, y, t)
    if "__set__" in value:
        return {_decode(v, name, root, storages) for v in value["__set__"]}
    if "__list__" in value:
        items = [_decode(v, name, root, storages) for v in value["__list__"]]
        return tuple(items) if value["tuple"] else items
    if "__dict__" in value:
        return {_decode(k, name, root, storages): _decode(v, name, root, storages)
                for k, v in value["__dict__"]}
    if "__obj__" in value:
        module, qualname = value["__obj__"].split(":")
        if not module.startswith(_BUFFER_MODULE):
            raise ValueError(f"checkpoint names a class outside {_BUFFER_MODULE}: {module}")
        obj = object.__new__(getattr(importlib.import_module(module), qualname))
        for key, item in value["state"].items():
            setattr(obj, key, _decode(item, key, root, storages))
        return obj
    if "__live__" in value:
        return getattr(root, name)
    raise ValueError(f"unreadable buffer state for {name!r}")


def buffer_state(buffer: Any, storages: list[ClassificationDataset]) -> dict[str, Any]:
    """Every attribute of a buffer (and its group sub-buffers) as tensors and plain values."""
    return {k: _encode(v, storages) for k, v in vars(buffer).items()}


def load_buffer_state(
    buffer: Any, state: dict[str, Any], storages: list[ClassificationDataset]
) -> None:
    """Restore ``buffer_state`` output into a freshly built buffer of the same config."""
    for key, value in state.items():
        setattr(buffer, key, _decode(value, key, buffer, storages))


# -- files -----------------------------------------------------------------------------------
def save_checkpoint(folder: str | Path, state: dict[str, Any]) -> Path:
    """Write atomically: a kill during the write leaves the previous checkpoint intact."""
    path = Path(folder) / CHECKPOINT_FILE
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(folder: str | Path) -> dict[str, Any]:
    return torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=True, map_location="cpu")
