"""Benchmarks: streams of experiences over tensor storage."""

from cl_runner.benchmarks.base import (
    Benchmark,
    BenchmarkConfigError,
    Experience,
    Stream,
    nc_benchmark,
)
from cl_runner.benchmarks.digits import SplitDigits
from cl_runner.benchmarks.torchvision_sources import DatasetUnavailableError
from cl_runner.benchmarks.vision import (
    PermutedMNIST,
    SplitCIFAR10,
    SplitCIFAR100,
    SplitFMNIST,
    SplitMNIST,
)

__all__ = [
    "Benchmark",
    "BenchmarkConfigError",
    "DatasetUnavailableError",
    "Experience",
    "PermutedMNIST",
    "SplitCIFAR10",
    "SplitCIFAR100",
    "SplitDigits",
    "SplitFMNIST",
    "SplitMNIST",
    "Stream",
    "nc_benchmark",
]
