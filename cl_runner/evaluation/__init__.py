"""Metrics, the evaluation plugin, loggers and the accuracy matrix."""

from cl_runner.evaluation.loggers import InteractiveLogger, TextLogger
from cl_runner.evaluation.metrics import (
    MetricValue,
    accuracy_metrics,
    bwt_metrics,
    forgetting_metrics,
    loss_metrics,
)
from cl_runner.evaluation.plugin import EvaluationPlugin

__all__ = [
    "EvaluationPlugin",
    "InteractiveLogger",
    "MetricValue",
    "TextLogger",
    "accuracy_metrics",
    "bwt_metrics",
    "forgetting_metrics",
    "loss_metrics",
]
