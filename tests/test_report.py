"""`cl-report` on a real sweep: its CSV equals statistics computed by hand from MLflow."""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from cl_runner import report
from tests.helpers import history, local_store, run_here, runs_of

CL_REPORT = [sys.executable, "-m", "cl_runner.report"]
SIZES, SEEDS = (20, 50), (0, 1)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list]:
    root = tmp_path_factory.mktemp("sweep")
    tag = {"sweep": str(root / "multiruns" / "a-sweep")}
    for size in SIZES:
        for seed in SEEDS:
            run_here(root, f"buffer.max_size={size}", f"seed={seed}", "strategy.train_epochs=1",
                     tags=tag)
    run_here(root, "buffer.max_size=20", "strategy.train_epochs=1")  # not in the sweep
    uri = local_store(root)
    runs = [r for r in runs_of(uri) if r.data.tags.get("sweep") == tag["sweep"]]
    assert len(runs) == len(SIZES) * len(SEEDS)
    return root, uri, runs


def cl_report(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["COLUMNS"] = "160"  # rich lays a piped table out in 80 columns otherwise
    proc = subprocess.run([*CL_REPORT, *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def read_report(out: Path) -> dict[int, dict[str, str]]:
    with open(out / "report.csv", newline="") as f:
        return {int(row["max_size"]): row for row in csv.DictReader(f)}


def final(uri: str, run_id: str, key: str) -> float:
    steps = history(uri, run_id, key)
    assert [s for s, _ in steps] == list(range(5))
    return steps[-1][1]


def test_report_means_and_stds_equal_hand_computed(sweep, tmp_path):
    _, uri, runs = sweep
    out = tmp_path / "report"
    proc = cl_report("--tracking-uri", uri, "--sweep", runs[0].data.tags["sweep"],
                     "--out", str(out))
    assert "Parametric" in proc.stdout and "± " in proc.stdout
    assert (out / "accuracy_vs_buffer_size.png").read_bytes().startswith(b"\x89PNG")
    rows = read_report(out)
    assert sorted(rows) == list(SIZES)
    for size in SIZES:
        ids = [r.info.run_id for r in runs if r.data.params["buffer.max_size"] == str(size)]
        row = rows[size]
        assert int(row["n_seeds"]) == len(SEEDS) == len(ids)
        assert (row["buffer"], row["groupby"]) == ("Parametric", "class")
        for name, key in (("accuracy", "accuracy/average_seen"),
                          ("forgetting", "forgetting/average")):
            values = [final(uri, rid, key) for rid in ids]
            assert float(row[f"{name}_mean"]) == pytest.approx(statistics.mean(values), abs=1e-12)
            assert float(row[f"{name}_std"]) == pytest.approx(statistics.stdev(values), abs=1e-12)


def test_report_finds_the_default_store_and_applies_a_filter(sweep, tmp_path, monkeypatch):
    root, uri, runs = sweep
    out = tmp_path / "report"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("CL_RUNNER_OUTPUT_ROOT", str(root))
    report.main(["--filter", "params.seed = '1'", "--out", str(out)])  # in process: faster
    rows = read_report(out)
    for size in SIZES:
        (run,) = [r for r in runs if r.data.params["buffer.max_size"] == str(size)
                  and r.data.params["seed"] == "1"]
        assert int(rows[size]["n_seeds"]) == 1 and float(rows[size]["accuracy_std"]) == 0
        assert float(rows[size]["accuracy_mean"]) == final(uri, run.info.run_id,
                                                           "accuracy/average_seen")
