"""The online protocol on full Fashion-MNIST and with real processes (slow): cl-run does the
hand-written loop's exact math, and a SIGKILL mid-stream resumes to the uninterrupted run."""

from __future__ import annotations

import json
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
    cl_run,
    history,
    local_store,
    run_folders,
    run_here,
    runs_of,
    start_cl_run,
)

pytestmark = pytest.mark.slow
MIRROR = Path("/usr/share/datasets/fashion-mnist")
TIMES = ("time/", "train/samples_per_s", "train/steps_per_s")


@pytest.mark.skipif(not (MIRROR / "train-images-idx3-ubyte.gz").exists(),
                    reason=f"Fashion-MNIST files not in {MIRROR}")
def test_online_er_equals_the_hand_written_loop_on_fashion_mnist(tmp_path: Path):
    """Online ER (chunks of 50 + 10 replayed, reservoir of 1000, SGD 0.1, one thread): cl-run
    and scripts/reference_online.py reach the same accuracies to the last digit."""
    result = run_here(
        tmp_path, "benchmark=split_fmnist", "protocol=online", "protocol.experience_size=50",
        "buffer=reservoir", "buffer.max_size=1000", "dataloader.batch_size_mem=10",
        "optimizer=sgd", "optimizer.lr=0.1", "optimizer.momentum=0", "tracking=none",
        f"paths.data_root={tmp_path / 'data'}", f"benchmark.mirror={MIRROR}")
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "reference_online.py"), "--seed=0",
         "--experience-size=50", f"--mirror={MIRROR}"],
        capture_output=True, text=True, timeout=600, check=True)
    reference = json.loads(proc.stdout.splitlines()[-1].removeprefix("RESULT "))
    assert reference["steps"] == 1200
    assert result.matrix.rows[-1] == reference["accuracies"]
    lines = [line for line in read_metrics(result.output_dir) if "accuracy/stream" in line]
    assert sum(line["train/iterations"] for line in lines) == 1200
    assert all(line["train/steps_per_s"] > 0 for line in lines)


def test_sigkill_mid_stream_then_resume_gives_the_uninterrupted_run(tmp_path: Path):
    """cl-run protocol=online is SIGKILLed while training chunk 37 (checkpoints every 100
    samples); the resumed run continues at the last checkpointed chunk, in the same folder and
    MLflow run, and ends with the uninterrupted run's metrics, every step logged once."""
    settings = ["protocol=online", "protocol.experience_size=20", "protocol.eval_every=60",
                "protocol.checkpoint_every=100"]
    reference = run_here(tmp_path / "reference", *settings, "tracking=none")
    root = tmp_path / "killed"
    pausing = ["dataloader._target_=tests.crash_plugins.PausingReplay",
               "+dataloader.pause_at=37", "+dataloader.iterations=1",
               f"+dataloader.marker={root / 'paused'}"]
    proc = start_cl_run(root, *settings, *pausing)
    deadline = time.monotonic() + 120
    while not (root / "paused").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (folder,) = run_folders(root)
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert 0 < state["online"]["next_chunk"] <= 37
    resumed = cl_run(root, *settings, *pausing, "+dataloader.pause_s=0", "resume=true",
                     "resume_allow_changes=[dataloader.pause_s]")
    assert "resuming" in resumed.stdout
    ours = [{k: v for k, v in line.items() if not k.startswith(TIMES)}
            for line in read_metrics(folder)]
    theirs = [{k: v for k, v in line.items() if not k.startswith(TIMES)}
              for line in read_metrics(reference.output_dir)]
    assert ours == theirs
    uri = local_store(root)
    (run,) = runs_of(uri)
    assert run.info.status == "FINISHED"
    for key in ("anytime_eval/accuracy_seen", "accuracy/stream"):
        logged = [s for s, _ in history(uri, run.info.run_id, key)]
        assert logged == [line["step"] for line in ours if key in line], key


def test_anytime_evaluation_leaves_training_unchanged_in_the_batch_protocol(tmp_path: Path):
    """Periodic evaluation of an offline run (every 100 samples, on 150 test samples) adds its
    lines and summaries and changes nothing else: the experience lines equal a plain run's."""
    plain = run_here(tmp_path / "plain", "tracking=none", "strategy.train_epochs=2")
    anytime = run_here(tmp_path / "anytime", "tracking=none", "strategy.train_epochs=2",
                       "protocol.eval_every=100", "protocol.eval_subsample=150")
    extra = ("anytime/", "min_accuracy/", *TIMES)
    lines = read_metrics(anytime.output_dir)
    experience_lines = [{k: v for k, v in line.items() if not k.startswith(extra)}
                        for line in lines if "accuracy/stream" in line]
    assert experience_lines == [{k: v for k, v in line.items() if not k.startswith(TIMES)}
                                for line in read_metrics(plain.output_dir)]
    points = [line["step"] for line in lines if "anytime_eval/accuracy_seen" in line]
    assert len(points) >= 10 and points == sorted(points)
    assert {"anytime/aaa", "anytime/wc_acc", "anytime/min_acc"} <= set(lines[-1])
