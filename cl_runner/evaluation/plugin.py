"""EvaluationPlugin: drives metrics on the strategy's callbacks and hands values to loggers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from cl_runner.core import CALLBACKS, SupervisedPlugin
from cl_runner.evaluation.metrics import MetricValue, PluginMetric


def _flatten(metrics: Iterable[PluginMetric | Sequence[PluginMetric]]) -> list[PluginMetric]:
    out: list[PluginMetric] = []
    for m in metrics:
        out.extend(m if isinstance(m, list | tuple) else [m])
    return out


class EvaluationPlugin(SupervisedPlugin):
    """Collects metric values emitted during training and evaluation.

    ``EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[...])`` as in
    Avalanche. Loggers get every emitted batch of values (``log_metrics``) and may also
    implement strategy callbacks (e.g. to print progress).
    """

    def __init__(
        self, *metrics: PluginMetric | Sequence[PluginMetric], loggers: Sequence[Any] = ()
    ) -> None:
        self.metrics = _flatten(metrics)
        self.loggers = list(loggers)
        self.last_metrics: dict[str, float] = {}
        self.all_metrics: dict[str, tuple[list[int], list[float]]] = {}
        self._handlers: dict[str, list] = {name: [] for name in CALLBACKS}
        for metric in self.metrics:
            for event, handler in metric.events().items():
                self._handlers[event].append(handler)
        self._logger_hooks = {
            name: [getattr(lg, name) for lg in self.loggers if hasattr(lg, name)]
            for name in CALLBACKS
        }

    def handled_events(self) -> set[str]:
        """Events with a metric handler or a logger hook (the others would do nothing, so
        the strategy does not dispatch them here)."""
        return {name for name in CALLBACKS if self._handlers[name] or self._logger_hooks[name]}

    def handle(self, event: str, strategy: Any, **kwargs: Any) -> None:
        """Run the metrics on ``event``, record what they emit and pass it to the loggers."""
        emitted: list[MetricValue] = []
        for handler in self._handlers[event]:
            emitted.extend(handler(strategy))
        for value in emitted:
            self.last_metrics[value.name] = value.value
            xs, vs = self.all_metrics.setdefault(value.name, ([], []))
            xs.append(value.x)
            vs.append(value.value)
        if emitted:
            for logger in self.loggers:
                logger.log_metrics(emitted)
        for hook in self._logger_hooks[event]:
            hook(strategy, emitted, **kwargs)

    def get_last_metrics(self) -> dict[str, float]:
        """Last value of every metric emitted so far (a copy)."""
        return dict(self.last_metrics)

    def get_all_metrics(self) -> dict[str, tuple[list[int], list[float]]]:
        """Every metric's history as ``(x values, values)``."""
        return {k: (list(x), list(v)) for k, (x, v) in self.all_metrics.items()}


def make_default_evaluator() -> EvaluationPlugin:
    """Avalanche's default: accuracy and loss per epoch, experience and stream, printed."""
    from cl_runner.evaluation.loggers import InteractiveLogger
    from cl_runner.evaluation.metrics import accuracy_metrics, loss_metrics

    levels = {"epoch": True, "experience": True, "stream": True}
    return EvaluationPlugin(
        accuracy_metrics(**levels), loss_metrics(**levels), loggers=[InteractiveLogger()]
    )
