"""The storage-policy interface every replay buffer implements (Avalanche's ``ExemplarsBuffer``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from cl_runner.data.dataset import ClassificationDataset, empty_dataset


def check_size(name: str, value: int) -> int:
    """``value`` if it is a non-negative int, else a one-line ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r}: must be a non-negative integer")
    return value


class ExemplarsBuffer(ABC):
    """A dataset of at most ``max_size`` stored samples and the policy that refreshes it.

    ``update(strategy)`` reads only ``strategy.experience`` (plus, for feature-based selection,
    ``strategy.device`` / ``strategy.eval_mb_size`` when present), so a
    ``SimpleNamespace(experience=exp)`` is enough to use a buffer without a training strategy.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = check_size("max_size", max_size)
        self._buffer: ClassificationDataset = empty_dataset()

    @property
    def buffer(self) -> ClassificationDataset:
        """The stored samples: an index view on the stream's storage (empty before any update)."""
        return self._buffer

    @buffer.setter
    def buffer(self, data: ClassificationDataset) -> None:
        self._buffer = data

    def update(self, strategy: Any, **kwargs: Any) -> None:
        """Add ``strategy.experience``'s data (``ReplayPlugin`` calls it after each experience)."""
        self.post_adapt(strategy, strategy.experience)

    def post_adapt(self, agent: Any, exp: Any) -> None:  # noqa: B027 - optional hook
        """Refresh the buffer with ``exp.dataset``; a no-op here, so a subclass may override
        ``update`` alone (Avalanche's older API)."""

    @abstractmethod
    def resize(self, strategy: Any, new_size: int) -> None:
        """Set ``max_size`` to ``new_size`` and drop samples until the buffer fits."""
