"""The seed tutorial, ported with only its imports changed, runs every snippet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cl_runner.benchmarks.vision import FMNIST_MIRROR

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "tutorial_replay.py"


@pytest.mark.slow
@pytest.mark.skipif(not Path(FMNIST_MIRROR).is_dir(),
                    reason="needs Fashion-MNIST: apt install dataset-fashion-mnist")
def test_tutorial_port_runs_every_snippet(tmp_path: Path):
    env = {**os.environ, "CL_RUNNER_DATA_ROOT": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # GroupBalancedDataLoader over the 5 task-labelled experiences: one sample of each task
    assert out.splitlines()[0] == "[0, 1, 2, 3, 4]"
    # both standalone buffers stay at 30 after every update
    sizes = re.findall(r"Max buffer size: (\d+), current size: (\d+)", out)
    assert sizes == [("30", "0")] + [("30", "30")] * 5 + [("30", "0")] + [("30", "30")] * 5
    groups = re.findall(r"\(group (\d+)\) -> size (\d+)", out)
    assert sorted(int(k) for k, _ in groups) == list(range(10))
    assert {size for _, size in groups} == {"3"}
    # the loader over the 10 class groups: 3 samples of each class in its first batch
    first_group_batch = [ln for ln in out.splitlines() if ln.startswith("[")][1]
    labels = [int(v) for v in first_group_batch.strip("[]").split(",")]
    assert sorted(labels) == sorted(list(range(10)) * 3)
    assert out.count("Override the dataloader.") == 4 and out.count("Buffer update.") == 5
    finals = re.findall(r"Top1_Acc_Stream/eval_phase/test_stream/Task000 = ([0-9.]+)", out)
    assert len(finals) == 5 and float(finals[-1]) > 0.5
