"""Multirun sweeps through real launchers and stores: no run lost, misfiled or cut short.

Several processes writing one MLflow store race on creating the schema and the experiment
(README, "Sweeps and the MLflow UI"); these tests check the sweep as a whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import cl_run, history, local_store, runs_of, start_cl_run
from tests.mlflow_server import MlflowServer

N_EXP = 5
SIZES, SEEDS = (100, 200), (0, 1)
SWEEP = ("-m", "buffer.max_size=100,200", "seed=0,1", "strategy.train_epochs=1")
SMALL_SWEEP = ("-m", "buffer.max_size=20,50", "strategy.train_epochs=1",
               "hydra/launcher=submitit_local")


def complete_sweep(uri: str, n_runs: int, experiment: str = "cl_runner", n_sweeps: int = 1
                   ) -> list:
    """The sweeps' runs, after checking each is FINISHED, filed right and fully logged."""
    runs = runs_of(uri, experiment)
    assert len(runs) == n_runs
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["sweep"] for r in runs}) == n_sweeps
    client = MlflowClient(tracking_uri=uri)
    default = client.get_experiment_by_name("Default")
    assert default is None or not client.search_runs([default.experiment_id])
    for run in runs:
        steps = [s for s, _ in history(uri, run.info.run_id, "accuracy/stream")]
        assert steps == list(range(N_EXP)), run.info.run_name
    return runs


@pytest.mark.slow
def test_parallel_sweep_on_a_fresh_local_store(tmp_path: Path):
    assert not (tmp_path / "mlflow.db").exists()
    cl_run(tmp_path, *SWEEP, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", timeout=900)
    runs = complete_sweep(local_store(tmp_path), len(SIZES) * len(SEEDS))
    settings = sorted((int(r.data.params["buffer.max_size"]), int(r.data.params["seed"]))
                      for r in runs)
    assert settings == sorted(product(SIZES, SEEDS))


@pytest.mark.slow
def test_two_sweeps_started_together_keep_apart(tmp_path: Path):
    """Same second, fresh store: two sweep folders, two sweep tags, nothing mixed or lost."""
    sweep = ("-m", "buffer.max_size=20,50", "strategy.train_epochs=1")
    procs = [start_cl_run(tmp_path, *sweep, f"seed={seed}") for seed in (0, 1)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    runs = complete_sweep(local_store(tmp_path), 4, n_sweeps=2)
    by_sweep: dict[str, set[str]] = {}
    for run in runs:
        by_sweep.setdefault(run.data.tags["sweep"], set()).add(run.data.params["seed"])
    assert sorted(map(sorted, by_sweep.values())) == [["0"], ["1"]]
    assert len(list(tmp_path.glob("multiruns/*/*"))) == 2


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a sqlite store, ended at teardown."""
    server = MlflowServer(tmp_path_factory.mktemp("server")).start()
    try:
        yield server.uri
    finally:
        server.stop()


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
