"""A run's output folder: the record of everything it measures, written before anything else.

``config.yaml`` (resolved config), ``run_info.json`` (name, config key, tags, status),
``metrics.jsonl`` (one line per logged step), and at the end the accuracy matrix and buffer
composition as CSV and PNG. MLflow receives the folder from the background writer
(``tracking/``); ``cl-sync`` sends it later when the server was away. Every write that fails
(a full disk) raises ``OutputWriteError`` naming the file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cl_runner.errors import OutputWriteError
from cl_runner.files import atomic_write_text

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
MATRIX_FILE = "accuracy_matrix.csv"
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

    def write_tables(
        self, rows: Sequence[Sequence[float]], n_experiences: int,
        composition: Sequence[Sequence[int]],
    ) -> None:
        """The accuracy matrix and buffer composition as CSV, then as charts."""
        self.write_text(MATRIX_FILE, _csv(
            ["after_exp", *(f"test_exp_{j}" for j in range(n_experiences))],
            [[i, *row] for i, row in enumerate(rows)]))
        n_classes = len(composition[0]) if composition else 0
        self.write_text(COMPOSITION_FILE, _csv(
            ["after_exp", *(f"class_{c}" for c in range(n_classes))],
            [[i, *counts] for i, counts in enumerate(composition)]))
        self._write_charts(rows, composition)

    def _write_charts(
        self, rows: Sequence[Sequence[float]], composition: Sequence[Sequence[int]]
    ) -> None:
        """Charts are a convenience: failing to draw one is a warning, never a failed run."""
        from cl_runner import plots

        for name, draw, data in ((plots.MATRIX_PNG, plots.accuracy_matrix_png, rows),
                                 (plots.COMPOSITION_PNG, plots.buffer_composition_png,
                                  composition)):
            if not data:
                continue
            try:
                draw(data, self.path / name)
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
