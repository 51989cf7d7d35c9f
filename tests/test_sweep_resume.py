"""Sweep resume: the same `cl-run -m ...` command with resume=true skips the finished jobs,
continues the killed one in its own folder and MLflow run, starts the rest; cl-report then
shows each configuration once."""

from __future__ import annotations

import csv
import os
import signal
import statistics
import time
from pathlib import Path

import pytest

from cl_runner import report
from tests.helpers import cl_run, history, local_store, runs_of, start_cl_run

SIZES, SEEDS = (20, 50), (0, 1)


def sweep_command(marker: Path) -> tuple[str, ...]:
    # job 1 of 4 (max_size 20, seed 1) pauses mid-way through experience 2
    return ("-m", "buffer.max_size=20,50", "seed=0,1", "strategy.train_epochs=1",
            "dataloader._target_=tests.sweep_plugins.PauseNth", f"+dataloader.marker={marker}",
            "+dataloader.nth=2")


def wait_for(path: Path, proc, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"cl-run ended early:\n{proc.communicate()}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def steps(uri: str, run) -> list[int]:
    return [s for s, _ in history(uri, run.info.run_id, "accuracy/average_seen")]


@pytest.mark.slow
def test_a_killed_sweep_resumes_and_reports_each_configuration_once(tmp_path, monkeypatch):
    command = sweep_command(tmp_path / "paused")
    proc = start_cl_run(tmp_path, *command)
    wait_for(tmp_path / "paused", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    uri = local_store(tmp_path)
    before = {r.info.status: r for r in runs_of(uri)}
    assert sorted(before) == ["FINISHED", "KILLED"]  # jobs 2 and 3 never started
    killed, finished = before["KILLED"], before["FINISHED"]
    assert steps(uri, killed) == [0, 1] and steps(uri, finished) == list(range(5))
    old_sweep = killed.data.tags["sweep"]

    done = cl_run(tmp_path, *command, "resume=true", timeout=600)
    assert done.stdout.count("nothing to resume") == 1
    assert done.stdout.count("resuming ") == 1
    runs = runs_of(uri)
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    by_id = {r.info.run_id: r for r in runs}
    assert killed.info.run_id in by_id and finished.info.run_id in by_id  # no new runs
    assert all(steps(uri, r) == list(range(5)) for r in runs)
    settings = sorted((r.data.params["buffer.max_size"], r.data.params["seed"]) for r in runs)
    assert settings == sorted((str(m), str(s)) for m in SIZES for s in SEEDS)
    # every run now belongs to the resumed sweep; the two continued ones remember the first
    (new_sweep,) = {r.data.tags["sweep"] for r in runs}
    assert new_sweep != old_sweep
    assert sorted(r.data.tags.get("sweep.previous", "") for r in runs) == [
        "", "", old_sweep, old_sweep]
    assert sorted(r.data.tags["sweep.job_num"] for r in runs) == ["0", "1", "2", "3"]

    # cl-report on the resumed sweep, given relative to the current directory
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    relative = os.path.relpath(new_sweep, tmp_path)
    report.main(["--tracking-uri", uri, "--sweep", relative, "--out", "report"])
    with open(tmp_path / "report" / "report.csv", newline="") as f:
        rows = {int(row["max_size"]): row for row in csv.DictReader(f)}
    assert sorted(rows) == list(SIZES)
    for size in SIZES:
        row = rows[size]
        assert (row["n_seeds"], row["seeds"], row["duplicates"]) == ("2", "0 1", "0")
        members = [r for r in runs if r.data.params["buffer.max_size"] == str(size)]
        finals = [history(uri, r.info.run_id, "accuracy/average_seen")[-1][1] for r in members]
        assert float(row["accuracy_mean"]) == pytest.approx(statistics.mean(finals), abs=1e-12)
        assert float(row["accuracy_std"]) == pytest.approx(statistics.stdev(finals), abs=1e-12)
    # the first sweep's folder still finds the two runs it started
    report.main(["--tracking-uri", uri, "--sweep", old_sweep, "--out", "old"])
    with open(tmp_path / "old" / "report.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["max_size"], row["n_seeds"]) == ("20", "2")
