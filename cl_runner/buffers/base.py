"""The storage-policy interface every replay buffer implements (Avalanche's ``ExemplarsBuffer``).

Besides Avalanche's methods, a storage policy declares what a runner needs to know about it,
so that adding a buffer type is one module in this package plus one config file:

- ``short_name``: its name in run names, reports and ``cl-run buffer=`` options;
- ``takes_selection``: whether it ranks exemplars with a selection strategy;
- ``check_args``: the constructor's own argument checks (the runner calls them before any
  data is loaded);
- ``group_kind`` / ``check_stream``: what its groups are, and whether it can hold one sample
  of each for a given stream;
- ``name_parts``: the words of a run name;
- ``group_sizes`` / ``class_counts`` / ``nbytes``: what it holds;
- ``state_dict`` / ``load_state_dict``: its contents, for checkpoints.

Modules of this package import torch lazily, so the runner can read these declarations before
torch is loaded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import lazy_loader as lazy

from cl_runner.checks import NON_NEGATIVE_INT, SettingError

if TYPE_CHECKING:
    from cl_runner.benchmarks.info import StreamInfo
    from cl_runner.data.dataset import ClassificationDataset

torch = lazy.load("torch")


def check_size(name: str, value: Any) -> int:
    """``value`` if it is a non-negative int, else a one-line ``SettingError`` naming ``name``."""
    return NON_NEGATIVE_INT(name, value)


class ExemplarsBuffer(ABC):
    """A dataset of at most ``max_size`` stored samples and the policy that refreshes it.

    ``update(strategy)`` reads only ``strategy.experience`` (plus, for feature-based selection,
    ``strategy.device`` / ``strategy.eval_mb_size`` when present), so a
    ``SimpleNamespace(experience=exp)`` is enough to use a buffer without a training strategy.
    """

    short_name: ClassVar[str] = "buffer"
    takes_selection: ClassVar[bool] = False

    def __init__(self, max_size: int) -> None:
        self.max_size = check_size("max_size", max_size)
        self._buffer: ClassificationDataset | None = None

    # -- declarations (no instance, no torch) ------------------------------------------------
    @classmethod
    def check_args(cls, max_size: Any = 0, **args: Any) -> None:
        """Raise ``SettingError`` for an argument the constructor refuses."""
        check_size("max_size", max_size)

    @classmethod
    def group_kind(cls, args: Mapping[str, Any]) -> str | None:
        """What the groups are (``"class"``, ``"task"``, ``"experience"``, ``"all"``), or None
        for an ungrouped buffer."""
        return None

    @classmethod
    def group_count(cls, args: Mapping[str, Any], stream: StreamInfo) -> tuple[int, str]:
        """How many groups the buffer holds at the end of ``stream``, and what they are."""
        kind = cls.group_kind(args)
        counts = {"class": (stream.n_classes, "classes"), "task": (stream.n_tasks, "tasks"),
                  "experience": (stream.n_experiences, "experiences")}
        return counts.get(kind, (1, "sample" if kind is None else "group"))

    @classmethod
    def check_stream(cls, args: Mapping[str, Any], stream: StreamInfo) -> None:
        """Raise ``SettingError`` when the buffer cannot keep one sample of every group."""
        need, what = cls.group_count(args, stream)
        if args.get("max_size", 0) < need:
            raise SettingError("max_size", args.get("max_size"),
                               f"at least {need}: one sample for each of the {need} {what} "
                               "(buffer=none for no replay)")

    @classmethod
    def name_parts(cls, args: Mapping[str, Any]) -> list[str]:
        """Words of a run name (max size and seed are added by the runner)."""
        return [cls.short_name]

    # -- contents -------------------------------------------------------------------------
    @property
    def buffer(self) -> ClassificationDataset:
        """The stored samples: an index view on the stream's storage (empty before any update)."""
        if self._buffer is None:
            from cl_runner.data.dataset import empty_dataset

            self._buffer = empty_dataset()
        return self._buffer

    @buffer.setter
    def buffer(self, data: ClassificationDataset) -> None:
        self._buffer = data

    def group_sizes(self) -> dict[Hashable, int]:
        """Stored samples per group key, in group order; ``{}`` for ungrouped buffers."""
        return {}

    def class_counts(self, n_classes: int) -> list[int]:
        """Stored samples of each class ``0..n_classes-1``."""
        return torch.bincount(self.buffer.targets.cpu(), minlength=n_classes).tolist()

    def nbytes(self) -> int:
        """Bytes of the stored exemplars (inputs, targets, task labels) and their payload."""
        data = self.buffer
        payload = sum(v.element_size() * v.numel() for v in data.payload.values())
        return data.sample_nbytes * len(data) + payload

    # -- Avalanche's policy methods --------------------------------------------------------
    def update(self, strategy: Any, **kwargs: Any) -> None:
        """Add ``strategy.experience``'s data (``ReplayPlugin`` calls it after each experience)."""
        self.post_adapt(strategy, strategy.experience)

    def post_adapt(self, agent: Any, exp: Any) -> None:  # noqa: B027 - optional hook
        """Refresh the buffer with ``exp.dataset``; a no-op here, so a subclass may override
        ``update`` alone (Avalanche's older API)."""

    @abstractmethod
    def resize(self, strategy: Any, new_size: int) -> None:
        """Set ``max_size`` to ``new_size`` and drop samples until the buffer fits."""

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The stored samples and capacity (tensors and plain values only)."""
        return {"max_size": self.max_size, "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        from cl_runner.data.dataset import ClassificationDataset

        self.max_size = state["max_size"]
        self._buffer = ClassificationDataset.from_state_dict(state["buffer"])
