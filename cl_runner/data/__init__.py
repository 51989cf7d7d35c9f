"""Tensor-backed datasets and balanced / replay data loaders."""

from cl_runner.data.dataset import ClassificationDataset, empty_dataset

__all__ = ["ClassificationDataset", "empty_dataset"]
