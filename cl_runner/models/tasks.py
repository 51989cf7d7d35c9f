"""Calling a model with or without task labels (Avalanche's ``avalanche_forward``), no torch."""

from __future__ import annotations

from typing import Any


def forward_with_tasks(model: Any, x: Any, task_labels: Any) -> Any:
    """``model(x, task_labels)`` for multi-task models (``takes_task_labels``), else
    ``model(x)``."""
    if getattr(model, "takes_task_labels", False):
        return model(x, task_labels)
    return model(x)
