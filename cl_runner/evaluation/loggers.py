"""Console loggers for library use (the runner prints its own progress and tables)."""

from __future__ import annotations

from typing import Any, TextIO

from cl_runner.evaluation.metrics import MetricValue


class TextLogger:
    """Prints phase headers and every emitted metric value, one per line."""

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file

    def _print(self, text: str) -> None:
        print(text, file=self.file, flush=True)

    def log_metrics(self, values: list[MetricValue]) -> None:
        for v in values:
            self._print(f"\t{v.name} = {v.value:.4f}")

    def before_training_exp(self, strategy: Any, values: list[MetricValue], **kw: Any) -> None:
        self._print(f"-- Start of training on experience {strategy.experience.current_experience}")

    def before_eval(self, strategy: Any, values: list[MetricValue], **kw: Any) -> None:
        self._print("> Eval on experiences")

    def before_eval_exp(self, strategy: Any, values: list[MetricValue], **kw: Any) -> None:
        exp = strategy.experience
        self._print(f"-- Eval on {exp.origin_stream} experience {exp.current_experience} "
                    f"(task {exp.task_label})")


class InteractiveLogger(TextLogger):
    """TextLogger on stdout (Avalanche's interactive logger also shows progress bars)."""

    def __init__(self, *, file: TextIO | None = None) -> None:
        super().__init__(file)
