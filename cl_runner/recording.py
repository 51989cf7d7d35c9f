"""A run's output folder: the record of everything it measures, written before anything else.

``config.yaml`` (resolved config), ``run_info.json`` (name, config key, tags, status),
``metrics.jsonl`` (one line per logged step), and at the end the accuracy matrices (per test
experience, per class), per-class forgetting and the buffer composition as CSV and PNG.
MLflow receives the folder from the background writer (``tracking/``); ``cl-sync`` sends it
later when the server was away. Every write that fails (a full disk) raises
``OutputWriteError`` naming the file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cl_runner.errors import OutputWriteError
from cl_runner.files import atomic_write_text

if TYPE_CHECKING:
    from cl_runner.evaluation.measurements import Measurements

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
MATRIX_FILE = "accuracy_matrix.csv"
CLASS_ACCURACY_FILE = "class_accuracy.csv"
CLASS_FORGETTING_FILE = "class_forgetting.csv"
COMPOSITION_FILE = "buffer_composition.csv"
RUN_INFO_FILE = "run_info.json"


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an OSError while writing ``path`` into a one-line ``OutputWriteError``."""
    try:
        yield
    except OSError as err:
        raise OutputWriteError(path, err) from None


class RunFolder:
    """The files of one run folder that the training process writes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with writing(self.path):
            self.path.mkdir(parents=True, exist_ok=True)

    def write_text(self, name: str, text: str) -> None:
        """Replace file ``name`` atomically (readers never see half of it)."""
        with writing(self.path / name):
            atomic_write_text(self.path / name, text)

    def write_info(self, info: dict[str, Any]) -> None:
        self.write_text(RUN_INFO_FILE, json.dumps(info, indent=2))

    def append_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """One ``metrics.jsonl`` line; the writer uploads complete lines only."""
        path = self.path / METRICS_FILE
        with writing(path), open(path, "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")

    def metric_lines(self) -> int:
        return len(read_metrics(self.path))

    def keep_metric_lines(self, n: int) -> None:
        """Keep the first ``n`` lines (a resume drops what came after its checkpoint)."""
        lines = [json.dumps(line) for line in read_metrics(self.path)[:n]]
        self.write_text(METRICS_FILE, "".join(line + "\n" for line in lines))

    def write_tables(self, measured: Measurements, charts: bool = True) -> None:
        """The accuracy matrices and buffer composition as CSV, then (``charts``) as PNG."""
        n_exp, n_classes = measured.experiences.n, measured.classes.n
        exp_columns = [f"test_exp_{j}" for j in range(n_exp)]
        class_columns = [f"class_{c}" for c in range(n_classes)]
        tables = (
            (MATRIX_FILE, exp_columns, measured.experiences.rows),
            (CLASS_ACCURACY_FILE, class_columns, measured.classes.rows),
            (CLASS_FORGETTING_FILE, class_columns, measured.class_forgetting_rows()),
            (COMPOSITION_FILE, class_columns, measured.composition),
        )
        for name, columns, rows in tables:
            self.write_text(name, _csv(["after_exp", *columns],
                                       [[i, *row] for i, row in enumerate(rows)]))
        if charts:
            self._write_charts(measured)

    def _write_charts(self, measured: Measurements) -> None:
        """Charts are a convenience: failing to draw one is a warning, never a failed run."""
        from functools import partial

        from cl_runner import plots

        charts = (
            (plots.MATRIX_PNG, plots.accuracy_matrix_png, measured.experiences.rows),
            (plots.CLASS_ACCURACY_PNG, partial(plots.heatmap_png, columns="class",
                                               title="accuracy per class"),
             measured.classes.rows),
            (plots.CLASS_FORGETTING_PNG, partial(plots.heatmap_png, columns="class",
                                                 title="forgetting per class",
                                                 value="forgetting", signed=True),
             measured.class_forgetting_rows()),
            (plots.COMPOSITION_PNG, plots.buffer_composition_png, measured.composition),
        )
        for name, draw, rows in charts:
            if not rows:
                continue
            try:
                draw(rows, self.path / name)
            except Exception as exc:
                log.warning("chart %s not written (%s: %s)", name, type(exc).__name__, exc)


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def read_metrics(folder: str | Path) -> list[dict[str, Any]]:
    """The complete lines of a run folder's ``metrics.jsonl`` (a cut last line is ignored)."""
    path = Path(folder) / METRICS_FILE
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()
            if line.strip()]


def read_info(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / RUN_INFO_FILE).read_text())
