"""Kills, interrupts, crashes, divergence, tracking outages and determinism: nothing is lost."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import (
    cl_run,
    history,
    local_store,
    run_folders,
    runs_of,
    start_cl_run,
    wait_for_lines,
)
from tests.mlflow_server import MlflowServer, free_port

# Split Digits: 36 iterations per experience (4 epochs), 25 ms each at least: ~1 s per
# experience on any machine, time to interrupt a run mid-way
PACED = ("dataloader._target_=tests.crash_plugins.PacedReplay",
         "+dataloader.iteration_delay_s=0.025")
METRICS = "runs/*/*/metrics.jsonl"


def matrix_lines(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if "Accuracy matrix" in ln)
    return lines[start + 1 : start + 10]


@pytest.mark.parametrize("buffer", [
    "parametric", "reservoir",
    pytest.param("class_balanced", marks=pytest.mark.slow),
    pytest.param("experience_balanced", marks=pytest.mark.slow),
])
def test_sigkill_then_resume_gives_the_uninterrupted_result(tmp_path: Path, buffer: str):
    overrides = [*PACED, f"buffer={buffer}"]
    reference = cl_run(tmp_path / "reference", f"buffer={buffer}", "tracking=none")
    root = tmp_path / "killed"
    proc = start_cl_run(root, *overrides)
    wait_for_lines(METRICS, root, 2, proc)
    time.sleep(0.3)  # mid-way through the third experience
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (folder,) = run_folders(root)
    assert len((folder / "metrics.jsonl").read_text().splitlines()) < 5
    (run,) = runs_of(local_store(root))
    assert run.info.status == "RUNNING"  # killed -9: nobody could end it
    resumed = cl_run(root, *overrides, "resume=true")
    assert matrix_lines(resumed.stdout) == matrix_lines(reference.stdout)
    (run,) = runs_of(local_store(root))  # same MLflow run, now complete
    assert run.info.status == "FINISHED"
    assert [s for s, _ in history(local_store(root), run.info.run_id, "accuracy/stream")] == [
        0, 1, 2, 3, 4]
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 5


def test_checkpoint_loads_with_weights_only(tmp_path: Path):
    import torch

    cl_run(tmp_path, "tracking=none", "strategy.train_epochs=1")
    (folder,) = run_folders(tmp_path)
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert state["next_experience"] == 5 and len(state["metrics"]) == 5
    assert {"model", "optimizer", "buffer", "rng", "run_id", "clock"} <= set(state)


def test_sigint_marks_the_run_killed_and_keeps_what_was_measured(tmp_path: Path):
    proc = start_cl_run(tmp_path, *PACED)
    wait_for_lines(METRICS, tmp_path, 1, proc)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    (run,) = runs_of(local_store(tmp_path))
    assert run.info.status == "KILLED"
    steps = history(local_store(tmp_path), run.info.run_id, "accuracy/stream")
    assert len(steps) >= 1 and steps[0][0] == 0
    (folder,) = run_folders(tmp_path)
    rows = (folder / "accuracy_matrix.csv").read_text().splitlines()
    assert len(rows) == 1 + len(steps)
    assert json.loads((folder / "run_info.json").read_text())["status"] == "KILLED"


def test_exception_marks_the_run_failed_with_metrics_so_far(tmp_path: Path):
    proc = cl_run(tmp_path, "dataloader._target_=tests.crash_plugins.CrashingReplay",
                  "+dataloader.crash_at=2", "strategy.train_epochs=1", check=False)
    assert proc.returncode == 1 and "boom: injected failure" in proc.stderr
    (run,) = runs_of(local_store(tmp_path))
    assert run.info.status == "FAILED"
    assert [s for s, _ in history(local_store(tmp_path), run.info.run_id, "accuracy/stream")] == [
        0, 1]
    names = {a.path for a in MlflowClient(local_store(tmp_path)).list_artifacts(run.info.run_id)}
    assert {"metrics.jsonl", "accuracy_matrix.csv", "config.yaml"} <= names


def test_nan_loss_stops_with_experience_and_iteration(tmp_path: Path):
    proc = cl_run(tmp_path, "optimizer=sgd", "optimizer.lr=1e30", "optimizer.momentum=0",
                  check=False)
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert "training loss is" in err[0] and "at experience 0, iteration" in err[0]
    (run,) = runs_of(local_store(tmp_path))
    assert run.info.status == "FAILED"


def test_unreachable_server_fails_fast_in_one_line(tmp_path: Path):
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    proc = cl_run(tmp_path, f"tracking.tracking_uri={uri}", check=False)
    assert time.monotonic() - start < 10
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and uri in err[0], proc.stderr


@pytest.mark.slow
def test_server_lost_mid_run_training_goes_on_and_cl_sync_uploads_later(tmp_path: Path):
    import subprocess
    import sys

    server = MlflowServer(tmp_path / "server").start()
    try:
        proc = start_cl_run(tmp_path / "jobs", *PACED,
                            f"tracking.tracking_uri={server.uri}")
        wait_for_lines(METRICS, tmp_path / "jobs", 1, proc)
        server.stop()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "cl-sync" in out  # the warning says how to upload later
        (folder,) = run_folders(tmp_path / "jobs")
        info = json.loads((folder / "run_info.json").read_text())
        assert info["synced"] is False and info["status"] == "FINISHED"
        assert len((folder / "metrics.jsonl").read_text().splitlines()) == 5
        server.start()
        sync = subprocess.run([sys.executable, "-m", "cl_runner.sync", str(folder)],
                              capture_output=True, text=True, timeout=120)
        assert sync.returncode == 0, sync.stderr
        (run,) = runs_of(server.uri)
        assert run.info.run_id == info["run_id"] and run.info.status == "FINISHED"
        assert [s for s, _ in history(server.uri, run.info.run_id, "accuracy/stream")] == [
            0, 1, 2, 3, 4]
        assert json.loads((folder / "run_info.json").read_text())["synced"] is True
    finally:
        server.stop()


def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path: Path):
    def final_metrics(root: Path, seed: int) -> dict:
        cl_run(root, "tracking=none", "strategy.train_epochs=1", f"seed={seed}")
        (folder,) = run_folders(root)
        lines = [json.loads(ln) for ln in (folder / "metrics.jsonl").read_text().splitlines()]
        drop = ("time/", "train/samples_per_s")
        return [{k: v for k, v in ln.items() if not k.startswith(drop)} for ln in lines]

    first = final_metrics(tmp_path / "a", 0)
    assert first == final_metrics(tmp_path / "b", 0)
    assert first != final_metrics(tmp_path / "c", 1)


def _assert_complete_sweep(uri: str, n: int, experiment: str = "cl_runner") -> None:
    """n FINISHED runs of one sweep, each with all 5 steps of its per-experience metrics."""
    runs = runs_of(uri, experiment)
    assert len(runs) == n
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.tags["sweep"] for r in runs}) == 1
    for run in runs:
        assert [s for s, _ in history(uri, run.info.run_id, "accuracy/stream")] == [
            0, 1, 2, 3, 4]
        assert [s for s, _ in history(uri, run.info.run_id, "buffer/size")] == [0, 1, 2, 3, 4]


SWEEP_8 = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "strategy.train_epochs=1",
           "buffer.max_size=20,50,100,200", "seed=0,1"]


@pytest.mark.slow
@pytest.mark.parametrize("repeat", range(3))
def test_parallel_sweep_on_a_fresh_local_store_loses_nothing(tmp_path: Path, repeat: int):
    cl_run(tmp_path, *SWEEP_8, timeout=600)
    _assert_complete_sweep(local_store(tmp_path), 8)


@pytest.mark.slow
def test_parallel_sweeps_on_a_real_server_lose_nothing(tmp_path: Path):
    server = MlflowServer(tmp_path / "server").start()
    try:
        for repeat in range(3):
            name = f"sweep{repeat}"
            cl_run(tmp_path / name, *SWEEP_8, f"tracking.experiment_name={name}",
                   env={"MLFLOW_TRACKING_URI": server.uri}, timeout=600)
            _assert_complete_sweep(server.uri, 8, name)
    finally:
        server.stop()
