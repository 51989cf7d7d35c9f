"""EvaluationPlugin: drives metrics on the strategy's callbacks and hands values to loggers."""

from __future__ import annotations

import warnings
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

    ``EvaluationPlugin(*metrics, loggers=None, collect_all=True, strict_checks=False)`` as in
    Avalanche: ``metrics`` are plugin metrics or lists of them; ``loggers`` is None (no
    logger), one logger, a list, or a callable returning them. Loggers get every emitted batch
    of values (``log_metrics``) and may also implement strategy callbacks (e.g. to print
    progress). With metrics but no logger it warns, as Avalanche does (Avalanche warns even
    without metrics). ``collect_all=False`` keeps only the last values (``get_all_metrics``
    is then empty). ``strict_checks=True``: ``eval`` must get a whole stream of a benchmark
    (checked in ``before_eval`` exactly as Avalanche 0.6 checks it: the first experience's
    origin stream must be as long as the benchmark's stream of that name, so a slice such as
    ``test_stream[:2]`` raises ValueError while one experience ``test_stream[0]`` passes).
    """

    def __init__(
        self,
        *metrics: PluginMetric | Sequence[PluginMetric],
        loggers: Any = None,
        collect_all: bool = True,
        strict_checks: bool = False,
    ) -> None:
        self.metrics = _flatten(metrics)
        if loggers is None:
            loggers = []
        elif callable(loggers) and not hasattr(loggers, "log_metrics"):
            loggers = loggers()
        if not isinstance(loggers, Sequence) or isinstance(loggers, str):
            loggers = [loggers]
        self.loggers = list(loggers)
        if self.metrics and not self.loggers:
            warnings.warn("No loggers specified, metrics will not be logged", stacklevel=2)
        self.collect_all = collect_all
        self.strict_checks = strict_checks
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
        events = {name for name in CALLBACKS if self._handlers[name] or self._logger_hooks[name]}
        return events | {"before_eval"} if self.strict_checks else events

    def handle(self, event: str, strategy: Any, **kwargs: Any) -> None:
        """Run the metrics on ``event``, record what they emit and pass it to the loggers."""
        emitted: list[MetricValue] = []
        for handler in self._handlers[event]:
            emitted.extend(handler(strategy))
        for value in emitted:
            self.last_metrics[value.name] = value.value
            if self.collect_all:
                xs, vs = self.all_metrics.setdefault(value.name, ([], []))
                xs.append(value.x)
                vs.append(value.value)
        if emitted:
            for logger in self.loggers:
                logger.log_metrics(emitted)
        for hook in self._logger_hooks[event]:
            hook(strategy, emitted, **kwargs)
        if event == "before_eval" and self.strict_checks:
            check_whole_stream(strategy.current_eval_stream)

    def reset_last_metrics(self) -> None:
        """Forget the last values (``get_last_metrics`` is empty until metrics emit again)."""
        self.last_metrics = {}

    def get_last_metrics(self) -> dict[str, float]:
        """Last value of every metric emitted so far (a copy)."""
        return dict(self.last_metrics)

    def get_all_metrics(self) -> dict[str, tuple[list[int], list[float]]]:
        """Every metric's history as ``(x values, values)``."""
        return {k: (list(x), list(v)) for k, (x, v) in self.all_metrics.items()}


def check_whole_stream(experiences: Any) -> None:
    """Avalanche 0.6's strict check: the first evaluated experience's origin stream must be
    as long as its benchmark's stream of the same name. Experiences built outside a benchmark
    (and online chunks) carry no origin and are not checked."""
    first = next(iter(experiences or []), None)
    if first is None:
        raise ValueError("eval() got no experiences to evaluate")
    origin = getattr(first, "origin", None)
    bench = getattr(origin, "benchmark", None)
    if bench is None:
        return
    full = bench.streams.get(origin.name)
    if full is not None and len(origin) != len(full):
        raise ValueError(
            "Stream provided to `eval` must be the same of the entire evaluation stream.")


def make_default_evaluator() -> EvaluationPlugin:
    """Avalanche's default: accuracy and loss per epoch, experience and stream, printed."""
    from cl_runner.evaluation.loggers import InteractiveLogger
    from cl_runner.evaluation.metrics import accuracy_metrics, loss_metrics

    levels = {"epoch": True, "experience": True, "stream": True}
    return EvaluationPlugin(
        accuracy_metrics(**levels), loss_metrics(**levels), loggers=[InteractiveLogger()]
    )
