"""Running the real `cl-run` entry point in a subprocess and reading MLflow back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

CL_RUN = [sys.executable, "-m", "cl_runner.cli"]


def cl_run(
    output_root: Path, *overrides: str, env: dict[str, str] | None = None, timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """``cl-run OVERRIDES`` with every output (Hydra folders, MLflow store) under output_root."""
    output_root.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "CL_RUNNER_OUTPUT_ROOT": str(output_root), **(env or {})}
    full_env.pop("MLFLOW_TRACKING_URI", None) if "MLFLOW_TRACKING_URI" not in (env or {}) else None
    proc = subprocess.run(
        [*CL_RUN, *overrides], env=full_env, capture_output=True, text=True, timeout=timeout,
        cwd=output_root,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"cl-run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def local_store(output_root: Path) -> str:
    return f"sqlite:///{output_root / 'mlflow.db'}"


def runs_of(uri: str, experiment: str = "cl_runner") -> list:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment!r} missing at {uri}"
    return client.search_runs([exp.experiment_id], max_results=1000)


def history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    client = MlflowClient(tracking_uri=uri)
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
