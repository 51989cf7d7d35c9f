"""What a benchmark declares about its stream before any data is loaded (no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod


@dataclass(frozen=True)
class StreamInfo:
    """Counts and sample shape that settings of other components are checked against."""

    n_classes: int
    n_experiences: int
    n_tasks: int
    input_shape: tuple[int, ...]

    @property
    def input_size(self) -> int:
        """Features of one flattened input sample (an MLP's ``input_size``)."""
        return int(prod(self.input_shape))
