"""Benchmarks: streams of experiences over tensor storage.

Importing this package loads no torch: constructors and their declarations (``info``,
``check_args``) are read by ``cl-run`` before any data is loaded.
"""

from cl_runner.benchmarks.base import Benchmark, Experience, Stream, nc_benchmark
from cl_runner.benchmarks.digits import SplitDigits
from cl_runner.benchmarks.info import StreamInfo
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
    "DatasetUnavailableError",
    "Experience",
    "PermutedMNIST",
    "SplitCIFAR10",
    "SplitCIFAR100",
    "SplitDigits",
    "SplitFMNIST",
    "SplitMNIST",
    "Stream",
    "StreamInfo",
    "nc_benchmark",
]
