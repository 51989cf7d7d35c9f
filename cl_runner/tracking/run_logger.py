"""One MLflow run per job, written through MlflowClient with an explicit experiment id."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

MAX_METRICS_PER_CALL = 1000  # MLflow's log_batch limit


class MLflowRunLogger:
    """Params, metrics by step, tags and artifacts of one MLflow run."""

    def __init__(
        self, uri: str, experiment_id: str, run_name: str, tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        if run_id is None:
            run = self.client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
            run_id = run.info.run_id
        self.run_id = run_id
        self.experiment_id = experiment_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, steps: Sequence[tuple[int, Mapping[str, float]]]) -> None:
        """Log ``(step, metrics)`` pairs in as few calls as MLflow allows (1000 values each).

        Each call is one transaction in the store, so a step is either fully logged or not
        at all; pairs are never split across calls unless one alone exceeds the limit.
        """
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch: list[Metric] = []
        for step, metrics in steps:
            items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
            if batch and len(batch) + len(items) > MAX_METRICS_PER_CALL:
                self.client.log_batch(self.run_id, metrics=batch)
                batch = []
            for start in range(0, len(items), MAX_METRICS_PER_CALL):
                batch += items[start : start + MAX_METRICS_PER_CALL]
                if len(batch) >= MAX_METRICS_PER_CALL:
                    self.client.log_batch(self.run_id, metrics=batch)
                    batch = []
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def logged_steps(self, key: str) -> set[int]:
        """Steps of ``key`` the run already has (to resend only what is missing)."""
        return {m.step for m in self.client.get_metric_history(self.run_id, key)}

    def reopen(self) -> None:
        """Mark a resumed run as running again (fails if the run does not exist here)."""
        self.client.update_run(self.run_id, status="RUNNING")

    def log_artifacts(self, folder: str | Path, skip: Callable[[Path], bool]) -> None:
        """Upload a folder's files (sub-folders kept) except those ``skip`` names."""
        folder = Path(folder)
        for path in sorted(folder.iterdir()):
            if skip(path):
                continue
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), path.name)
            else:
                self.client.log_artifact(self.run_id, str(path))

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)
