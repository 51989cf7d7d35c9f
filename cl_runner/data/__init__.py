"""Tensor-backed datasets and balanced / replay data loaders."""

from cl_runner.data.dataset import ClassificationDataset, empty_dataset
from cl_runner.data.loaders import (
    GroupBalancedDataLoader,
    GroupBalancedInfiniteDataLoader,
    LoaderOptions,
    ReplayDataLoader,
    TaskBalancedDataLoader,
    TensorDataLoader,
    split_by_task,
)
from cl_runner.data.sampling import GroupBatchSampler, split_batch_size

__all__ = [
    "ClassificationDataset",
    "GroupBalancedDataLoader",
    "GroupBalancedInfiniteDataLoader",
    "GroupBatchSampler",
    "LoaderOptions",
    "ReplayDataLoader",
    "TaskBalancedDataLoader",
    "TensorDataLoader",
    "empty_dataset",
    "split_batch_size",
    "split_by_task",
]
