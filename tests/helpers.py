"""Running jobs in-process (Hydra's compose API and the job function, as the Lightning-Hydra
template's tests do) or the real `cl-run` entry point in a subprocess; reading MLflow back."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from cl_runner.config.schema import register
from cl_runner.run import RunResult, run_job

CL_RUN = [sys.executable, "-m", "cl_runner.cli"]
REPO = Path(__file__).resolve().parents[1]
_JOBS = itertools.count()


def compose_config(output_root: Path, *overrides: str) -> DictConfig:
    """The config ``cl-run OVERRIDES`` would run, with every output under ``output_root``."""
    register()
    GlobalHydra.instance().clear()
    with initialize_config_module("cl_runner.conf", version_base="1.3"):
        return compose("config", overrides=[f"paths.output_root={output_root}", *overrides])


def run_here(output_root: Path, *overrides: str, tags: dict[str, str] | None = None
             ) -> RunResult:
    """One job in this process (MLflow upload in a thread), as ``cl-run OVERRIDES`` runs it;
    without charts unless ``charts=true`` is among the overrides (they cost ~0.6 s a run)."""
    cfg = compose_config(output_root, "charts=false", *overrides)
    folder = output_root / "runs" / "in-process" / f"job{next(_JOBS)}"
    return run_job(cfg, folder, tags=tags, overrides=overrides, writer="thread")


def cl_env(output_root: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a test job: outputs under output_root, this repo importable."""
    full = {**os.environ, "CL_RUNNER_OUTPUT_ROOT": str(output_root), "PYTHONPATH": str(REPO)}
    full.pop("MLFLOW_TRACKING_URI", None)
    full.update(env or {})
    return full


def _interruptible() -> None:
    """Ctrl-C's default action in the child, as in a terminal: a pytest started in the
    background by a non-interactive shell ignores SIGINT, and its children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cl_run(output_root: Path, *overrides: str, env: dict[str, str] | None = None
                 ) -> subprocess.Popen:
    """``cl-run`` in the background (for tests that interrupt or kill it)."""
    output_root.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [*CL_RUN, *overrides], env=cl_env(output_root, env), cwd=output_root, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_interruptible,
    )


def cl_run(
    output_root: Path, *overrides: str, env: dict[str, str] | None = None, timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """``cl-run OVERRIDES`` with every output (Hydra folders, MLflow store) under output_root."""
    output_root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [*CL_RUN, *overrides], env=cl_env(output_root, env), capture_output=True, text=True,
        timeout=timeout, cwd=output_root,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"cl-run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_folders(output_root: Path) -> list[Path]:
    """Job output folders (those with a run_info.json), oldest first."""
    infos = (output_root / "runs").glob("*/*/run_info.json")
    return sorted((p.parent for p in infos), key=lambda p: p.stat().st_mtime)


def wait_for_lines(path_glob: str, root: Path, n: int, proc: subprocess.Popen,
                   timeout: float = 120) -> Path:
    """Wait until a file matching ``path_glob`` under root has ``n`` lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in root.glob(path_glob):
            if len(path.read_text().splitlines()) >= n:
                return path
        if proc.poll() is not None:
            raise AssertionError(f"cl-run ended early:\n{proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"{path_glob} never reached {n} lines")


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
