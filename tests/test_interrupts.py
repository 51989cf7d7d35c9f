"""Real processes and real signals: SIGKILL, SIGINT, SIGTERM, a full disk, processes that start
together. Every case ends with no run RUNNING, no step twice, a usable store. Slow."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cl_runner.recording import read_metrics
from tests.helpers import (
    REPO,
    cl_env,
    cl_run,
    history,
    local_store,
    run_folders,
    run_here,
    runs_of,
    start_cl_run,
)

pytestmark = pytest.mark.slow
FAST = ("strategy.train_epochs=1",)


def pausing(root: Path, pause_at: int = 2) -> tuple[str, ...]:
    """Overrides that make a run pause mid-way through experience ``pause_at``."""
    return ("dataloader._target_=tests.crash_plugins.PausingReplay",
            f"+dataloader.pause_at={pause_at}", f"+dataloader.marker={root / 'paused'}")


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"cl-run ended early:\n{proc.communicate()}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def steps(uri: str, run_id: str) -> list[int]:
    return [s for s, _ in history(uri, run_id, "accuracy/stream")]


@pytest.mark.parametrize("buffer", ["parametric", "reservoir", "class_balanced",
                                    "experience_balanced"])
def test_sigkill_then_resume_gives_the_uninterrupted_result(tmp_path: Path, buffer: str):
    reference = run_here(tmp_path / "reference", "tracking=none", f"buffer={buffer}", *FAST)
    root = tmp_path / "killed"
    overrides = [*pausing(root), f"buffer={buffer}", *FAST]
    proc = start_cl_run(root, *overrides)
    wait_for(root / "paused", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (folder,) = run_folders(root)
    assert [line["step"] for line in read_metrics(folder)] == [0, 1]
    resumed = cl_run(root, *overrides, "+dataloader.pause_s=0", "resume=true",
                     "resume_allow_changes=[dataloader.pause_s]")
    assert "resuming" in resumed.stdout
    rows = [[float(v) for v in line.split(",")[1:]]
            for line in (folder / "accuracy_matrix.csv").read_text().splitlines()[1:]]
    assert rows == reference.matrix.rows
    uri = local_store(root)
    (run,) = runs_of(uri)  # the same MLflow run, now complete, each step once
    assert run.info.status == "FINISHED" and steps(uri, run.info.run_id) == [0, 1, 2, 3, 4]
    assert run_folders(root) == [folder], "a resume leaves no folder of its own"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_ends_killed_with_what_was_measured(tmp_path: Path, signum: int):
    proc = start_cl_run(tmp_path, *pausing(tmp_path), *FAST)
    wait_for(tmp_path / "paused", proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    uri = local_store(tmp_path)
    (run,) = runs_of(uri)
    assert run.info.status == "KILLED" and steps(uri, run.info.run_id) == [0, 1]
    (folder,) = run_folders(tmp_path)
    assert len((folder / "accuracy_matrix.csv").read_text().splitlines()) == 3
    assert json.loads((folder / "run_info.json").read_text())["status"] == "KILLED"


def test_sigterm_while_the_run_starts_ends_killed(tmp_path: Path):
    """SIGTERM as soon as the run's folder is written: the run is loading torch and its MLflow
    writer is starting in parallel. The run still ends KILLED, in one line, exit 143."""
    proc = start_cl_run(tmp_path, *FAST)
    deadline = time.monotonic() + 120
    while not any((f / "run_info.json").exists() for f in run_folders(tmp_path)):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    (run,) = runs_of(local_store(tmp_path))
    assert run.info.status == "KILLED"
    (folder,) = run_folders(tmp_path)
    assert json.loads((folder / "run_info.json").read_text())["status"] == "KILLED"


def test_sigint_while_finishing_never_leaves_the_run_running(tmp_path: Path):
    """Ctrl-C just after the last experience lands in the end-of-run work (tables, upload):
    that work completes and the run is FINISHED or KILLED, with all 5 steps."""
    proc = start_cl_run(tmp_path, *FAST)
    deadline = time.monotonic() + 120
    while not any(len(read_metrics(f)) == 5 for f in run_folders(tmp_path)):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err
    uri = local_store(tmp_path)
    (run,) = runs_of(uri)
    assert run.info.status in ("FINISHED", "KILLED")
    assert steps(uri, run.info.run_id) == [0, 1, 2, 3, 4]
    (folder,) = run_folders(tmp_path)
    assert (folder / "accuracy_matrix.png").exists()


def test_sigkill_during_store_creation_never_breaks_the_store(tmp_path: Path):
    """A process creating the store is killed at instants across the whole creation; the
    store is then either absent or complete, and the next run works."""
    root = tmp_path / "out"
    uri = local_store(root)
    create = [sys.executable, "-c",
              "import sys; from cl_runner.tracking.store import prepare_experiment; "
              "prepare_experiment(sys.argv[1], 'cl_runner')", uri]
    # a fresh cache: the first kills land while the empty-store template is being made
    env = cl_env(root, {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    started = time.monotonic()
    subprocess.run(create, check=True, env=env, timeout=120)
    full = time.monotonic() - started
    shutil.rmtree(tmp_path / "cache")
    from cl_runner.tracking.store import store_problem

    for k in range(5):
        (root / "mlflow.db").unlink(missing_ok=True)
        proc = subprocess.Popen(create, env=env)
        time.sleep(full * (0.4 + 0.15 * k))  # from mid-import to the end of table creation
        proc.kill()
        proc.wait()
        db = root / "mlflow.db"
        assert not db.exists() or store_problem(db) is None, f"kill {k}: {store_problem(db)}"
    result = run_here(root, *FAST)
    assert result.status == "FINISHED"
    assert [r.info.status for r in runs_of(uri)] == ["FINISHED"]


def test_a_store_half_made_by_an_older_version_is_repaired(tmp_path: Path):
    import sqlite3

    root = tmp_path / "out"
    root.mkdir()
    with sqlite3.connect(root / "mlflow.db") as conn:  # what a killed migration left behind
        conn.execute("CREATE TABLE _alembic_tmp_experiments (x INTEGER)")
    result = run_here(root, *FAST)
    assert result.status == "FINISHED" and len(runs_of(local_store(root))) == 1
    assert list(root.glob("mlflow.db.broken-*")), "the broken store is kept for inspection"


def test_four_runs_started_together_on_a_fresh_directory(tmp_path: Path):
    procs = [start_cl_run(tmp_path, *FAST, f"seed={s}") for s in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    runs = runs_of(local_store(tmp_path))
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1", "2", "3"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    folders = run_folders(tmp_path)
    assert len(folders) == 4
    seeds = sorted(json.loads((f / "run_info.json").read_text())["name"] for f in folders)
    assert seeds == [f"parametric-class-m200-s{s}" for s in range(4)]
    for folder in folders:  # no folder holds another run's lines
        assert [line["step"] for line in read_metrics(folder)] == [0, 1, 2, 3, 4]


def test_two_resumes_of_one_killed_run_one_proceeds(tmp_path: Path):
    proc = start_cl_run(tmp_path, *pausing(tmp_path), *FAST)
    wait_for(tmp_path / "paused", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = [*pausing(tmp_path), *FAST, "+dataloader.pause_s=0", "resume=true",
             "resume_allow_changes=[dataloader.pause_s]"]
    first, second = start_cl_run(tmp_path, *again), start_cl_run(tmp_path, *again)
    results = [p.communicate(timeout=300) + (p.returncode,) for p in (first, second)]
    codes = sorted(code for _, _, code in results)
    assert codes == [0, 2], results
    refused = next(err for _, err, code in results if code == 2)
    assert "being written by another cl-run" in refused and len(refused.splitlines()) == 1
    uri = local_store(tmp_path)
    (run,) = runs_of(uri)
    assert run.info.status == "FINISHED" and steps(uri, run.info.run_id) == [0, 1, 2, 3, 4]


def test_job_chdir_keeps_the_store_and_data_where_they_belong(tmp_path: Path):
    cl_run(tmp_path, *FAST, "hydra.job.chdir=true")
    (run,) = runs_of(local_store(tmp_path))
    assert run.info.status == "FINISHED"
    (folder,) = run_folders(tmp_path)
    assert not list(folder.rglob("mlflow.db")) and not (folder / "outputs").exists()


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_full_disk_ends_failed_in_one_line_and_keeps_the_last_checkpoint(tmp_path: Path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "3m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
        # a 1.8 MB checkpoint (model and Adam state): the second one cannot be written
        proc = cl_run(disk, *FAST, "model.hidden_size=2048", f"tracking.tracking_uri={store}",
                      check=False,
                      env={"CL_RUNNER_OUTPUT_ROOT": str(disk)})
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(err) == 1, proc.stderr
        assert "No space left on device" in err[0] and str(disk) in err[0]
        (run,) = runs_of(store)
        assert run.info.status == "FAILED"
        (folder,) = [p.parent for p in disk.glob("runs/*/*/run_info.json")]
        state = torch.load(folder / "checkpoint.pt", weights_only=True)
        assert 1 <= state["next_experience"] < 5
        assert not list(folder.glob(".*.tmp"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_server_lost_mid_run_training_goes_on_and_cl_sync_uploads_later(tmp_path: Path):
    from tests.mlflow_server import MlflowServer

    server = MlflowServer(tmp_path / "server").start()
    try:
        jobs = tmp_path / "jobs"
        proc = start_cl_run(jobs, *pausing(jobs, pause_at=1), "+dataloader.pause_s=3",
                            f"tracking.tracking_uri={server.uri}")
        wait_for(jobs / "paused", proc)
        server.stop()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "cl-sync" in err  # the warning says how to upload later
        (folder,) = run_folders(jobs)
        tracking = json.loads((folder / "tracking.json").read_text())
        assert tracking["synced"] is False
        assert json.loads((folder / "run_info.json").read_text())["status"] == "FINISHED"
        server.start()
        sync = subprocess.run([sys.executable, "-m", "cl_runner.sync", str(folder)],
                              capture_output=True, text=True, timeout=120,
                              env={**cl_env(jobs), "PYTHONPATH": str(REPO)})
        assert sync.returncode == 0, sync.stderr
        (run,) = runs_of(server.uri)
        assert run.info.run_id == tracking["run_id"] and run.info.status == "FINISHED"
        assert steps(server.uri, run.info.run_id) == [0, 1, 2, 3, 4]
        assert json.loads((folder / "tracking.json").read_text())["synced"] is True
    finally:
        server.stop()
