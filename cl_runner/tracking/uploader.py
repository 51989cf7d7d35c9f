"""Make a run's MLflow run hold what its output folder holds: the folder is the record.

The training process writes the folder (``run_info.json``, ``config.yaml``, one line per
step in ``metrics.jsonl``, tables at the end); a ``FolderUploader`` sends it to MLflow, from
the background writer during a run (``writer.py``) or from ``cl-sync`` afterwards. Sending is
idempotent: a step MLflow already has (a resumed run, an upload cut short) is skipped, found
by the first key of its line, and each call logs whole steps, so none is half there.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cl_runner.files import atomic_write_text
from cl_runner.recording import CONFIG_FILE, METRICS_FILE, read_info
from cl_runner.tracking.store import limit_http_retries, prepare_experiment

log = logging.getLogger(__name__)

TRACKING_FILE = "tracking.json"  # the uploader's own record: run id, what MLflow has


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """MLflow refuses NaN only in some stores; never send it."""
    return {k: v for k, v in metrics.items() if not math.isnan(v)}


def read_tracking(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / TRACKING_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


class FolderUploader:
    """Uploads one run folder to one tracking URI; tolerant of outages.

    A failing MLflow call switches it offline: one warning (how to upload later with
    ``cl-sync``), no further calls, and ``tracking.json`` says it is not synced.
    """

    def __init__(
        self, folder: str | Path, uri: str | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.info = read_info(self.folder)
        self.uri = uri or self.info["tracking_uri"]
        self.warn = warn or log.warning
        self.state = read_tracking(self.folder)
        self.logger: Any = None
        self.offline = False
        self._lines_read = 0
        self._known: dict[str, set[int]] = {}
        self._reopened = False

    @property
    def run_id(self) -> str | None:
        return self.logger.run_id if self.logger is not None else None

    def _call(self, action: Callable[[], Any]) -> Any:
        if self.offline:
            return None
        try:
            return action()
        except Exception as exc:  # any transport or server error: keep the folder, warn once
            self.offline = True
            self._write_state(synced=False)
            self.warn(
                f"MLflow at {self.uri} failed ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]}); results are kept in {self.folder}. "
                f"Upload them later with: cl-sync {self.folder}"
            )
            return None

    def open(self) -> str | None:
        """Create the MLflow run, or reopen the folder's run on this URI; returns its id."""
        self._call(self._open)
        return self.run_id

    def _open(self) -> None:
        limit_http_retries()
        import mlflow  # noqa: F401 - configures its loggers on import; quieten them after

        from cl_runner.tracking.run_logger import MLflowRunLogger

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        experiment_id = prepare_experiment(self.uri, self.info["experiment_name"])
        run_id = self.state.get("run_id") if self.state.get("tracking_uri") == self.uri else None
        if run_id is not None:
            from mlflow.exceptions import MlflowException

            logger = MLflowRunLogger(self.uri, experiment_id, self.info["name"], run_id=run_id)
            try:
                logger.reopen()
                self.logger, self._reopened = logger, True
            except MlflowException:
                run_id = None  # the run is not on this server: make it anew
        if run_id is None:
            self.logger = MLflowRunLogger(self.uri, experiment_id, self.info["name"],
                                          tags=self.info.get("tags", {}))
            self.logger.log_params(_params(self.folder))
        self._write_state(synced=False)

    def _write_state(self, synced: bool) -> None:
        if self.logger is not None:
            self.state.update(run_id=self.logger.run_id, tracking_uri=self.uri,
                              experiment_id=self.logger.experiment_id)
        self.state["synced"] = synced and not self.offline
        atomic_write_text(self.folder / TRACKING_FILE, json.dumps(self.state, indent=2))

    def sync(self) -> None:
        """Send the complete lines of ``metrics.jsonl`` not sent yet (and not in MLflow)."""
        if self.logger is None or self.offline:
            return
        lines = self._new_lines()
        pending = [(s, finite(m)) for s, m in lines if not self._has(s, m)]
        if pending:
            self._call(lambda: self.logger.log_metrics(pending))

    def _new_lines(self) -> list[tuple[int, dict[str, float]]]:
        path = self.folder / METRICS_FILE
        try:
            text = path.read_text()
        except FileNotFoundError:
            return []
        complete = text[: text.rfind("\n") + 1].splitlines()
        fresh = complete[self._lines_read :]
        self._lines_read = len(complete)
        parsed = []
        for line in fresh:
            record = json.loads(line)
            parsed.append((int(record.pop("step")), record))
        return parsed

    def _has(self, step: int, metrics: dict[str, float]) -> bool:
        """Whether MLflow already has this line's step (checked only for reopened runs)."""
        if not self._reopened or not metrics:
            return False
        sentinel = next(iter(metrics))
        if sentinel not in self._known:
            history = self._call(lambda: self.logger.logged_steps(sentinel))
            self._known[sentinel] = history or set()
        return step in self._known[sentinel]

    def finish(self, status: str) -> None:
        """Send what is left, the folder's files, and the final status."""
        self.sync()
        if self.logger is None or self.offline:
            return
        self._call(lambda: self.logger.log_artifacts(self.folder, skip=_not_uploaded))
        self._call(lambda: self.logger.end(status))
        self.state["status"] = status
        self._write_state(synced=True)


def _not_uploaded(path: Path) -> bool:
    """Files that stay local: resume state, locks, temporaries, the uploader's record, and a
    tracking store that a misplaced output root put inside the folder."""
    hidden = path.name.startswith(".") and path.name != ".hydra"
    return (hidden or path.suffix in (".tmp", ".lock")
            or path.name in ("checkpoint.pt", TRACKING_FILE, "mlflow.db", "mlartifacts"))


def _params(folder: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    from cl_runner.naming import flatten

    path = folder / CONFIG_FILE
    if not path.exists():
        return {}
    return flatten(OmegaConf.to_container(OmegaConf.load(path)))
