"""Benchmarks: streams of experiences over tensor storage."""

from cl_runner.benchmarks.base import (
    Benchmark,
    BenchmarkConfigError,
    Experience,
    Stream,
    nc_benchmark,
)
from cl_runner.benchmarks.digits import SplitDigits

__all__ = [
    "Benchmark",
    "BenchmarkConfigError",
    "Experience",
    "SplitDigits",
    "Stream",
    "nc_benchmark",
]
