"""Replay storage policies (Avalanche's names) and exemplar-selection strategies.

Buffers hold index views on the stream's tensor storage, so updates cost O(new + max_size).
"""

from cl_runner.buffers.balanced import (
    BalancedExemplarsBuffer,
    ClassBalancedBuffer,
    ExperienceBalancedBuffer,
)
from cl_runner.buffers.base import ExemplarsBuffer
from cl_runner.buffers.parametric import ParametricBuffer
from cl_runner.buffers.reservoir import ReservoirSamplingBuffer
from cl_runner.buffers.selection import (
    ClosestToCenterSelectionStrategy,
    ExemplarsSelectionStrategy,
    FeatureBasedExemplarsSelectionStrategy,
    HerdingSelectionStrategy,
    RandomExemplarsSelectionStrategy,
    herding_order,
)

__all__ = [
    "BalancedExemplarsBuffer",
    "ClassBalancedBuffer",
    "ClosestToCenterSelectionStrategy",
    "ExemplarsBuffer",
    "ExemplarsSelectionStrategy",
    "ExperienceBalancedBuffer",
    "FeatureBasedExemplarsSelectionStrategy",
    "HerdingSelectionStrategy",
    "ParametricBuffer",
    "RandomExemplarsSelectionStrategy",
    "ReservoirSamplingBuffer",
    "herding_order",
]
