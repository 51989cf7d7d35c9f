"""The performance benchmark's claim that cl-run and the hand-written loop do the same math."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FMNIST.is_dir(),
                    reason=f"{DEBIAN_FMNIST} absent: apt install dataset-fashion-mnist")
def test_bench_er_runs_cl_run_and_the_reference_to_the_same_accuracy(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_er.py"), "--seeds", "1", "--rounds", "1",
         "--no-cold", "--no-mlflow", "--startup-rounds", "1", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    (a,), (b,) = results["A"], results["B"]
    assert a["report"]["final_avg_acc"] == pytest.approx(b["report"]["final_avg_acc"], abs=1e-9)
    assert a["report"]["final_avg_acc"] > 0.6  # replay works: fine-tuning alone gets ~0.2
    assert "train+eval / B" in proc.stdout  # the targets table was printed
