"""Metrics (standalone and plugin), the evaluation plugin, loggers and the accuracy matrix.

The metric modules need torch and are imported on first use, so that the runner's torch-free
parts (``matrix``, ``measurements``, ``anytime``) load without it: ``cl-run`` starts its MLflow
writer process before torch is imported, and the two imports overlap on two cores.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "loggers": ["InteractiveLogger", "TextLogger"],
        "metrics": ["ExperienceBWT", "ExperienceForgetting", "MetricValue", "PluginMetric",
                    "StreamBWT", "StreamForgetting", "accuracy_metrics", "bwt_metrics",
                    "forgetting_metrics", "loss_metrics", "timing_metrics"],
        "plugin": ["EvaluationPlugin"],
        "standalone": ["BWT", "Accuracy", "ElapsedTime", "Forgetting", "LossMetric", "Mean",
                       "TaskAwareAccuracy", "TaskAwareLoss"],
    },
)
