"""One MLflow run per job, written through MlflowClient with an explicit experiment id."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


class MLflowRunLogger:
    """Params, per-experience metrics (step = experience index), tags and artifacts of a run."""

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

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for start in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[start : start + 1000])

    def logged_steps(self, key: str) -> set[int]:
        """Steps of ``key`` the run already has (to resend only what is missing)."""
        return {m.step for m in self.client.get_metric_history(self.run_id, key)}

    def reopen(self) -> None:
        """Mark a resumed run as running again."""
        self.client.update_run(self.run_id, status="RUNNING")

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifacts(self, folder: str | Path, skip: tuple[str, ...] = ()) -> None:
        """Upload a folder's files (sub-folders kept) except the names in ``skip``."""
        folder = Path(folder)
        for path in sorted(folder.iterdir()):
            if path.name in skip:
                continue
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), path.name)
            else:
                self.client.log_artifact(self.run_id, str(path))

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)
