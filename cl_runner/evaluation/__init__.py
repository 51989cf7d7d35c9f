"""Metrics (standalone and plugin), the evaluation plugin, loggers and the accuracy matrix."""

from cl_runner.evaluation.loggers import InteractiveLogger, TextLogger
from cl_runner.evaluation.metrics import (
    ExperienceBWT,
    ExperienceForgetting,
    MetricValue,
    PluginMetric,
    StreamBWT,
    StreamForgetting,
    accuracy_metrics,
    bwt_metrics,
    forgetting_metrics,
    loss_metrics,
    timing_metrics,
)
from cl_runner.evaluation.plugin import EvaluationPlugin
from cl_runner.evaluation.standalone import (
    BWT,
    Accuracy,
    ElapsedTime,
    Forgetting,
    LossMetric,
    Mean,
    TaskAwareAccuracy,
    TaskAwareLoss,
)

__all__ = [
    "BWT",
    "Accuracy",
    "ElapsedTime",
    "EvaluationPlugin",
    "ExperienceBWT",
    "ExperienceForgetting",
    "Forgetting",
    "InteractiveLogger",
    "LossMetric",
    "Mean",
    "MetricValue",
    "PluginMetric",
    "StreamBWT",
    "StreamForgetting",
    "TaskAwareAccuracy",
    "TaskAwareLoss",
    "TextLogger",
    "accuracy_metrics",
    "bwt_metrics",
    "forgetting_metrics",
    "loss_metrics",
    "timing_metrics",
]
