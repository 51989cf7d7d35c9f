"""Everything a run measures goes to its output folder first, then to MLflow.

The folder is the source of truth: ``metrics.jsonl`` (one line per experience), the
accuracy matrix and buffer composition CSVs, and the resolved config. MLflow receives the
same values; the folder is uploaded as the run's artifacts at the end.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from cl_runner.evaluation.matrix import AccuracyMatrix
from cl_runner.tracking.run_logger import MLflowRunLogger

METRICS_FILE = "metrics.jsonl"
MATRIX_FILE = "accuracy_matrix.csv"
COMPOSITION_FILE = "buffer_composition.csv"


class RunRecorder:
    """Writes per-experience metrics and end-of-run tables to ``output_dir`` and MLflow."""

    def __init__(self, output_dir: str | Path, tracker: MLflowRunLogger | None) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.tracker = tracker
        self.composition: list[list[int]] = []

    def log_experience(self, step: int, metrics: dict[str, float], class_counts: list[int]) -> None:
        with open(self.output_dir / METRICS_FILE, "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        self.composition.append(list(class_counts))
        if self.tracker is not None:
            self.tracker.log_metrics(
                {k: v for k, v in metrics.items() if not math.isnan(v)}, step=step
            )

    def write_tables(self, matrix: AccuracyMatrix) -> None:
        with open(self.output_dir / MATRIX_FILE, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["after_exp", *(f"test_exp_{j}" for j in range(matrix.n))])
            for i, row in enumerate(matrix.rows):
                writer.writerow([i, *row])
        with open(self.output_dir / COMPOSITION_FILE, "w", newline="") as f:
            writer = csv.writer(f)
            n_classes = len(self.composition[0]) if self.composition else 0
            writer.writerow(["after_exp", *(f"class_{c}" for c in range(n_classes))])
            for i, counts in enumerate(self.composition):
                writer.writerow([i, *counts])

    def finish(self, status: str) -> None:
        """Upload the output folder and close the MLflow run with ``status``."""
        if self.tracker is None:
            return
        self.tracker.log_artifacts(self.output_dir)
        self.tracker.end(status)


def read_metrics(output_dir: str | Path) -> list[dict[str, Any]]:
    """The per-experience lines of a run folder's ``metrics.jsonl``."""
    path = Path(output_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
