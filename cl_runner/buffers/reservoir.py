"""Reservoir sampling by random keys: a uniform sample of everything ever offered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.buffers.base import ExemplarsBuffer, check_size

if TYPE_CHECKING:
    from cl_runner.data.dataset import ClassificationDataset

torch = lazy.load("torch")


class ReservoirSamplingBuffer(ExemplarsBuffer):
    """Keeps the ``max_size`` samples with the largest U[0,1) keys among all samples seen.

    Each new sample gets one key (``torch.rand`` on the global CPU generator, so a seeded run
    picks the same samples on any device); an update is one ``topk`` over the new keys and the
    kept ones, O(new + max_size), never a rescan of the past. While ``max_size`` never grows
    the buffer is an exact uniform sample without replacement of the whole stream, however the
    stream was chunked. The buffer is held in descending-key order, so shrinking keeps a prefix.
    """

    short_name = "reservoir"

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        self._keys = torch.empty(0)

    def post_adapt(self, agent: Any, exp: Any) -> None:
        self.update_from_dataset(exp.dataset)

    def update_from_dataset(self, new_data: ClassificationDataset) -> None:
        """Offer ``new_data``'s samples to the reservoir (usable without a strategy)."""
        if len(new_data) == 0:
            return
        candidates = new_data.concat(self.buffer)
        keys = torch.cat([torch.rand(len(new_data)), self._keys])
        top = torch.topk(keys, min(self.max_size, len(keys)))
        self.buffer = candidates.subset(top.indices)
        self._keys = top.values

    def resize(self, strategy: Any, new_size: int) -> None:
        """Shrinking keeps the highest keys; growing keeps all (evicted samples never return)."""
        self.max_size = check_size("new_size", new_size)
        if len(self.buffer) > new_size:
            self.buffer = self.buffer.subset(torch.arange(new_size))
            self._keys = self._keys[:new_size]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "keys": self._keys.cpu()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._keys = state["keys"]
