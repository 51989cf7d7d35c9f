"""Everything a run measures goes to its output folder first, then to MLflow.

The folder is the source of truth: ``metrics.jsonl`` (one line per experience), the
accuracy matrix and buffer composition CSVs, the resolved config and ``run_info.json``
(MLflow run id, status, whether MLflow has everything). When the tracking server goes away
mid-run, training goes on, the user is warned once, and ``cl-sync FOLDER`` uploads later.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cl_runner.evaluation.matrix import AccuracyMatrix

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
MATRIX_FILE = "accuracy_matrix.csv"
COMPOSITION_FILE = "buffer_composition.csv"
RUN_INFO_FILE = "run_info.json"
NOT_UPLOADED = ("checkpoint.pt", "checkpoint.tmp")  # resume state stays local


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """MLflow refuses NaN only in some stores; never send it."""
    return {k: v for k, v in metrics.items() if not math.isnan(v)}


class RunRecorder:
    """Writes per-experience metrics and end-of-run tables to ``output_dir`` and MLflow.

    ``tracker`` is an ``MLflowRunLogger`` or None. A failing tracker call switches the
    recorder to offline mode: a warning, no further calls, ``run_info.json`` says unsynced.
    """

    def __init__(
        self, output_dir: str | Path, tracker: Any | None, info: dict[str, Any] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.tracker = tracker
        self.warn = warn or log.warning
        self.offline = False
        self.metrics: list[dict[str, float]] = []
        self.published = 0  # experiences already sent to MLflow
        self.composition: list[list[int]] = []
        self.info = dict(info or {})
        if tracker is not None:
            self.info.update(run_id=tracker.run_id, tracking_uri=tracker.uri,
                             experiment_id=tracker.experiment_id)
        self.info.setdefault("status", "RUNNING")
        self.write_info(synced=tracker is not None)

    # -- MLflow, tolerant of outages -----------------------------------------------------------
    def send(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self.tracker is None or self.offline:
            return
        try:
            getattr(self.tracker, method)(*args, **kwargs)
        except Exception as exc:  # any transport or server error: keep training
            self.offline = True
            self.write_info(synced=False)
            self.warn(
                f"MLflow at {self.tracker.uri} failed ({type(exc).__name__}); training goes on "
                f"and results are kept in {self.output_dir}. Upload them later with: "
                f"cl-sync {self.output_dir}"
            )

    def write_info(self, synced: bool | None = None) -> None:
        if synced is not None:
            self.info["synced"] = synced and not self.offline
        (self.output_dir / RUN_INFO_FILE).write_text(json.dumps(self.info, indent=2))

    # -- per experience --------------------------------------------------------------------
    def restore(self, metrics: list[dict[str, float]], composition: list[list[int]]) -> None:
        """Continue a resumed run: rewrite the folder's lines, send steps MLflow lacks."""
        self.metrics, self.composition = [dict(m) for m in metrics], [list(c) for c in composition]
        with open(self.output_dir / METRICS_FILE, "w") as f:
            for step, m in enumerate(self.metrics):
                f.write(json.dumps({"step": step, **m}) + "\n")
        self.publish_missing()

    def publish_missing(self) -> None:
        """Send every recorded step MLflow does not have yet (after a resume, or at the end of a
        run interrupted while it was sending)."""
        self.published = len(self.metrics)
        if self.tracker is None or self.offline:
            return
        try:
            logged = self.tracker.logged_steps("accuracy/stream")
        except Exception:
            logged = set()
        for step, m in enumerate(self.metrics):
            if step not in logged:
                self.send("log_metrics", finite(m), step=step)

    def record(self, step: int, metrics: dict[str, float], class_counts: list[int]) -> None:
        """Keep one experience's results in memory and in the folder (not yet in MLflow)."""
        with open(self.output_dir / METRICS_FILE, "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        self.metrics.append(dict(metrics))
        self.composition.append(list(class_counts))

    def publish(self) -> None:
        """Send the recorded experiences not sent yet (called after each checkpoint, so a
        resume resends exactly the steps MLflow lacks)."""
        while self.published < len(self.metrics):
            self.send("log_metrics", finite(self.metrics[self.published]), step=self.published)
            self.published += 1

    # -- end of run ------------------------------------------------------------------------
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
        from cl_runner import plots

        try:  # charts are a convenience: a plotting error must not keep the run from closing
            if matrix.rows:
                plots.accuracy_matrix_png(matrix.rows, self.output_dir / plots.MATRIX_PNG)
            if self.composition:
                plots.buffer_composition_png(
                    self.composition, self.output_dir / plots.COMPOSITION_PNG
                )
        except Exception as exc:
            self.warn(f"charts not written ({type(exc).__name__}: {exc})")

    def finish(self, status: str) -> None:
        """Record the final status, upload the output folder and close the MLflow run."""
        self.info["status"] = status
        self.write_info(synced=self.tracker is not None)
        self.publish_missing()
        self.send("log_artifacts", self.output_dir, skip=NOT_UPLOADED)
        self.send("end", status)
        self.write_info(synced=self.tracker is not None)


def read_metrics(output_dir: str | Path) -> list[dict[str, Any]]:
    """The per-experience lines of a run folder's ``metrics.jsonl``."""
    path = Path(output_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_info(output_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(output_dir) / RUN_INFO_FILE).read_text())
