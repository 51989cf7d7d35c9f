"""The job function end to end on Split Digits, in-process, read back through MlflowClient."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cl_runner.recording import read_metrics
from tests.helpers import cl_run, history, local_store, run_here, runs_of

N_EXP = 5


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("default")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = run_here(root)
    uri = local_store(root)
    (run,) = runs_of(uri)
    return out.getvalue(), uri, run, result


def test_default_run_prints_matrix_and_summary(default_run):
    stdout, _, _, result = default_run
    assert "Accuracy matrix" in stdout
    assert f"final average accuracy: {result.final_average_accuracy:.4f}" in stdout
    assert "average forgetting" in stdout


def test_default_run_params_metrics_and_steps(default_run):
    _, uri, run, result = default_run
    assert run.info.status == "FINISHED" and run.info.run_id == result.run_id
    assert run.info.run_name == "parametric-class-m200-s0"
    params = run.data.params
    assert params["buffer.max_size"] == "200" and params["buffer.groupby"] == "class"
    assert params["benchmark._target_"] == "cl_runner.benchmarks.SplitDigits"
    assert params["strategy._target_"] == "cl_runner.training.Replay"
    assert params["seed"] == "0" and params["optimizer.lr"] == "0.001"
    keys = set(run.data.metrics)
    expected = {f"accuracy/exp_{j:03d}" for j in range(N_EXP)}
    expected |= {f"buffer/class_{c:03d}" for c in range(10)}
    expected |= {"accuracy/stream", "buffer/size", "buffer/bytes", "accuracy/average_seen",
                 "forgetting/average"}
    assert expected <= keys
    assert not any(k.startswith("buffer/class_group_") for k in keys)  # same as class counts
    for key in expected:
        assert [s for s, _ in history(uri, run.info.run_id, key)] == list(range(N_EXP)), key


def test_buffer_counts_sum_to_size_and_respect_max(default_run):
    _, uri, run, _ = default_run
    rid = run.info.run_id
    sizes = dict(history(uri, rid, "buffer/size"))
    per_class = [dict(history(uri, rid, f"buffer/class_{c:03d}")) for c in range(10)]
    for step in range(N_EXP):
        assert sum(pc[step] for pc in per_class) == sizes[step]
        assert sizes[step] <= 200
    assert sizes[N_EXP - 1] == 200  # 1347 training samples seen: the buffer is full
    # after the first experience only its two classes are stored
    assert sum(1 for pc in per_class if pc[0] > 0) == 2
    # 64 float32 features + int64 target and task label per stored sample
    assert dict(history(uri, rid, "buffer/bytes"))[N_EXP - 1] == 200 * (64 * 4 + 8 + 8)


def test_stream_accuracy_matches_matrix_row_and_artifacts(default_run):
    _, uri, run, result = default_run
    client = MlflowClient(tracking_uri=uri)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.jsonl", "accuracy_matrix.csv", "buffer_composition.csv"} <= names
    assert "checkpoint.pt" not in names and "tracking.json" not in names
    local = Path(client.download_artifacts(run.info.run_id, "accuracy_matrix.csv"))
    rows = [line.split(",") for line in local.read_text().splitlines()[1:]]
    last = [float(v) for v in rows[-1][1:]]
    assert last == result.matrix.rows[-1]
    for j, value in enumerate(last):
        assert history(uri, run.info.run_id, f"accuracy/exp_{j:03d}")[-1][1] == pytest.approx(value)


@pytest.mark.parametrize(
    ("overrides", "final_size", "run_name"),
    [
        (["buffer=reservoir"], 200, "reservoir-m200-s0"),
        (["buffer=none"], 0, "none-s0"),
        (["buffer.max_size=50"], 50, "parametric-class-m50-s0"),
        (["buffer=class_balanced"], 200, "class_balanced-m200-s0"),
        (["buffer=experience_balanced"], 200, "experience_balanced-m200-s0"),
        (["buffer.groupby=null", "selection=herding"], 200, "parametric-all-herding-m200-s0"),
        (["strategy=naive"], 0, "naive-s0"),
    ],
)
def test_each_buffer_option_runs(tmp_path: Path, overrides, final_size, run_name):
    result = run_here(tmp_path, "tracking=none", "strategy.train_epochs=1", *overrides)
    assert result.status == "FINISHED" and result.name == run_name
    lines = read_metrics(result.output_dir)
    assert [line["step"] for line in lines] == list(range(N_EXP))
    assert lines[-1]["buffer/size"] == final_size


def test_replay_beats_fine_tuning(tmp_path: Path):
    """Class-incremental fine-tuning forgets everything but the last experience."""
    replay = run_here(tmp_path / "replay", "tracking=none")
    naive = run_here(tmp_path / "naive", "tracking=none", "strategy=naive")
    assert naive.final_average_accuracy < 0.3
    assert replay.final_average_accuracy > naive.final_average_accuracy + 0.4


@pytest.mark.parametrize(
    ("overrides", "group_metric"),
    [
        (["dataloader=group_balanced", "buffer.groupby=experience"], "buffer/experience_0"),
        (["benchmark.return_task_id=true", "model=multihead_mlp", "dataloader=task_balanced",
          "buffer.groupby=task"], "buffer/task_4"),
        (["benchmark.return_task_id=true", "model=multihead_mlp",
          "dataloader.task_balanced_dataloader=true", "buffer.groupby=experience",
          "selection=herding"], "buffer/experience_4"),
        (["buffer.groupby=null", "selection=closest_to_center"], "buffer/group_0"),
    ],
)
def test_loader_buffer_and_task_incremental_options(tmp_path: Path, overrides, group_metric):
    result = run_here(tmp_path, "tracking=none", "strategy.train_epochs=1", *overrides)
    assert result.status == "FINISHED"
    last = read_metrics(result.output_dir)[-1]
    groups = [k for k in last if k.startswith(group_metric.rsplit("_", 1)[0] + "_")]
    assert group_metric in last
    assert sum(last[k] for k in groups) == last["buffer/size"] == 200


def test_task_incremental_multihead_beats_class_incremental_fine_tuning(tmp_path: Path):
    """With task labels at test time, fine-tuning a multi-head model forgets far less."""
    ti = run_here(tmp_path, "tracking=none", "strategy=naive", "model=multihead_mlp",
                  "benchmark.return_task_id=true")
    assert ti.final_average_accuracy > 0.8


@pytest.mark.slow
def test_cl_run_command_end_to_end(tmp_path: Path):
    """The console entry point in its own process: preflight, Hydra, writer process."""
    proc = cl_run(tmp_path, "strategy.train_epochs=1")
    assert "Accuracy matrix" in proc.stdout and "results: sqlite:///" in proc.stdout
    (run,) = runs_of(local_store(tmp_path))
    assert run.info.status == "FINISHED" and run.data.tags["cl_runner.overrides"] == (
        "strategy.train_epochs=1")
    assert [s for s, _ in history(local_store(tmp_path), run.info.run_id, "accuracy/stream")] == [
        0, 1, 2, 3, 4]


@pytest.mark.slow
def test_multirun_makes_one_run_per_job_tagged_with_the_sweep(tmp_path: Path):
    cl_run(tmp_path, "-m", "buffer.max_size=20,50", "strategy.train_epochs=1")
    runs = runs_of(local_store(tmp_path))
    assert sorted(r.info.run_name for r in runs) == [
        "parametric-class-m20-s0", "parametric-class-m50-s0"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.tags["sweep"] for r in runs}) == 1
