"""What the user sees in the terminal: progress while training and the final tables."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cl_runner.core import SupervisedPlugin
from cl_runner.evaluation.matrix import AccuracyMatrix

console = Console(highlight=False, soft_wrap=True)


class ProgressPlugin(SupervisedPlugin):
    """A progress bar over the training iterations of each experience.

    Steps are handed to rich at most every ``UPDATE_S`` seconds (it redraws 10 times a second
    anyway): one ``advance`` per step would take its lock and time the step, every step.
    """

    UPDATE_S = 0.1

    def __init__(self, n_experiences: int | None = None) -> None:
        self.n_experiences = n_experiences
        self._progress: Progress | None = None
        self._task = None
        self._pending = 0
        self._next_update = 0.0

    def _start(self, strategy: Any) -> None:
        """On the first step of an experience, when every plugin has set the loader."""
        total = len(strategy.dataloader) * strategy.train_epochs
        self._progress = Progress(
            TextColumn("[bold]experience {task.fields[exp]}/{task.fields[n]}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=total, exp=strategy.experience.current_experience + 1,
            n=self.n_experiences or "?",
        )

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        if self._progress is None:
            self._start(strategy)
        self._pending += 1
        now = time.monotonic()
        if now >= self._next_update:
            self._progress.advance(self._task, self._pending)
            self._pending, self._next_update = 0, now + self.UPDATE_S

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, self._pending)
            self._progress.stop()
            self._progress = None
        self._pending, self._next_update = 0, 0.0


def print_experience_line(i: int, n: int, metrics: dict[str, float]) -> None:
    console.print(
        f"experience {i + 1}/{n}: loss {metrics['train/loss']:.3f}, "
        f"{metrics['train/iterations']:.0f} it in {metrics['time/train_s']:.2f}s | "
        f"stream acc {metrics['accuracy/stream']:.3f}, "
        f"avg seen {metrics['accuracy/average_seen']:.3f} | buffer {metrics['buffer/size']:.0f}"
    )


def print_summary(matrix: AccuracyMatrix, run_name: str, where: str) -> None:
    """The accuracy matrix (rows: after training i; columns: test experience j) and summaries."""
    table = Table(title=f"Accuracy matrix - {run_name}")
    table.add_column("after exp", justify="right")
    for j in range(matrix.n):
        table.add_column(f"test {j}", justify="right")
    for i, row in enumerate(matrix.rows):
        table.add_row(str(i), *(f"{v:.3f}" for v in row))
    console.print(table)
    console.print(
        f"final average accuracy: [bold]{matrix.average_accuracy():.4f}[/bold]   "
        f"average forgetting: [bold]{matrix.average_forgetting():.4f}[/bold]   "
        f"BWT: {matrix.bwt():.4f}"
    )
    console.print(f"results: {where}")
