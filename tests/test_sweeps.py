"""Multirun sweeps through real launchers and stores: no run lost, misfiled or cut short.

Several processes writing one MLflow store race on creating the schema and the experiment
(/work/shared/reference/mlflow-hydra-facts.md); these tests check the sweep as a whole.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from itertools import product
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import cl_run, history, local_store, runs_of

N_EXP = 5
SIZES, SEEDS = (100, 200, 500), (0, 1, 2)
SWEEP = ("-m", "buffer.max_size=100,200,500", "seed=0,1,2")
SMALL_SWEEP = ("-m", "buffer.max_size=20,50", "strategy.train_epochs=1",
               "hydra/launcher=submitit_local")
SERVER_READY_S = 60


def complete_sweep(uri: str, n_runs: int, experiment: str = "cl_runner") -> list:
    """The sweep's runs, after checking each is FINISHED, filed right and fully logged."""
    runs = runs_of(uri, experiment)
    assert len(runs) == n_runs
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["sweep"] for r in runs}) == 1
    client = MlflowClient(tracking_uri=uri)
    default = client.get_experiment_by_name("Default")
    assert default is None or not client.search_runs([default.experiment_id])
    for run in runs:
        steps = [s for s, _ in history(uri, run.info.run_id, "accuracy/stream")]
        assert steps == list(range(N_EXP)), run.info.run_name
    return runs


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher", [("hydra/launcher=joblib", "hydra.launcher.n_jobs=2"), ()], ids=["joblib", "basic"]
)
def test_sweep_on_a_fresh_local_store(tmp_path: Path, launcher: tuple[str, ...]):
    assert not (tmp_path / "mlflow.db").exists()
    cl_run(tmp_path, *SWEEP, *launcher, timeout=900)
    runs = complete_sweep(local_store(tmp_path), len(SIZES) * len(SEEDS))
    settings = sorted((int(r.data.params["buffer.max_size"]), int(r.data.params["seed"]))
                      for r in runs)
    assert settings == sorted(product(SIZES, SEEDS))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a sqlite store; its own process group, ended at teardown."""
    root = tmp_path_factory.mktemp("server")
    url = f"http://127.0.0.1:{_free_port()}"
    log = open(root / "server.log", "w")  # noqa: SIM115 - open for the server's lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         f"sqlite:///{root / 'srv.db'}", "--default-artifact-root", str(root / "art"),
         "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1]],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + SERVER_READY_S
        while True:
            assert proc.poll() is None, (root / "server.log").read_text()
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"no /health after {SERVER_READY_S} s"
                time.sleep(0.5)
        yield url
    finally:  # the server's workers share its process group: end them all
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()


def _check_server_sweep(tmp_path: Path, url: str, experiment: str) -> None:
    assert not (tmp_path / "mlflow.db").exists(), "the sweep wrote to a local store"
    runs = complete_sweep(url, 2, experiment)
    assert sorted(r.info.run_name for r in runs) == [
        "parametric-class-m20-s0", "parametric-class-m50-s0"]
    client = MlflowClient(tracking_uri=url)
    for run in runs:
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"accuracy_matrix.png", "buffer_composition.csv", "metrics.jsonl"} <= names


@pytest.mark.slow
def test_submitit_sweep_to_a_server_named_by_env(tmp_path: Path, mlflow_server: str):
    cl_run(tmp_path, *SMALL_SWEEP, "tracking.experiment_name=submitit_env",
           env={"MLFLOW_TRACKING_URI": mlflow_server}, timeout=600)
    _check_server_sweep(tmp_path, mlflow_server, "submitit_env")


@pytest.mark.slow
def test_submitit_sweep_to_a_server_named_in_config(tmp_path: Path, mlflow_server: str):
    cl_run(tmp_path, *SMALL_SWEEP, "tracking.experiment_name=submitit_cfg",
           f"tracking.tracking_uri={mlflow_server}", timeout=600)
    _check_server_sweep(tmp_path, mlflow_server, "submitit_cfg")
