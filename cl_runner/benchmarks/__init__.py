"""Benchmarks: streams of experiences over tensor storage.

Importing this package loads no torch: constructors and their declarations (``info``,
``check_args``) are read by ``cl-run`` before any data is loaded.
"""

from cl_runner.benchmarks.base import (
    Benchmark,
    Experience,
    Stream,
    as_classification_dataset,
    nc_benchmark,
)
from cl_runner.benchmarks.digits import SplitDigits
from cl_runner.benchmarks.files import image_folder_benchmark, tensors_file_benchmark
from cl_runner.benchmarks.generic import dataset_benchmark, ni_benchmark, tensors_benchmark
from cl_runner.benchmarks.info import StreamInfo
from cl_runner.benchmarks.online import OnlineCLExperience as OnlineCLExperience
from cl_runner.benchmarks.online import OnlineStream as OnlineStream
from cl_runner.benchmarks.online import split_online_stream as split_online_stream
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
    "as_classification_dataset",
    "dataset_benchmark",
    "image_folder_benchmark",
    "nc_benchmark",
    "ni_benchmark",
    "tensors_benchmark",
    "tensors_file_benchmark",
]
