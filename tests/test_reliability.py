"""Crashes, divergence, interrupts inside tracker calls, resume and determinism, in-process:
nothing measured is lost, no step is logged twice, no run is left RUNNING."""

from __future__ import annotations

import http.server
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from cl_runner.errors import NonFiniteLossError, ResumeError, TrackingUnavailableError
from cl_runner.recording import read_metrics
from cl_runner.signals import RunInterrupted
from cl_runner.tracking.run_logger import MLflowRunLogger
from tests import crash_plugins
from tests.helpers import history, local_store, run_here, runs_of
from tests.mlflow_server import free_port

CRASH_AT_2 = ("dataloader._target_=tests.crash_plugins.CrashingReplay",
              "+dataloader.crash_at=2")
WAIT_AT_2 = ("dataloader._target_=tests.crash_plugins.WaitingReplay", "+dataloader.wait_at=2")
FAST = ("strategy.train_epochs=1",)


def steps(uri: str, run_id: str, key: str = "accuracy/stream") -> list[int]:
    return [s for s, _ in history(uri, run_id, key)]


def test_checkpoint_loads_with_weights_only(tmp_path: Path):
    result = run_here(tmp_path, "tracking=none", *FAST)
    state = torch.load(result.output_dir / "checkpoint.pt", weights_only=True)
    assert state["format"] == 2 and state["next_experience"] == state["n_experiences"] == 5
    assert len(state["measured"]["experience_rows"]) == 5 and state["metric_lines"] == 5
    assert {"model", "optimizer", "plugins"} <= set(state["strategy"])


def test_exception_marks_the_run_failed_with_metrics_so_far(tmp_path: Path):
    with pytest.raises(RuntimeError, match="boom: injected failure"):
        run_here(tmp_path, *CRASH_AT_2, *FAST)
    uri = local_store(tmp_path)
    (run,) = runs_of(uri)
    assert run.info.status == "FAILED"
    assert steps(uri, run.info.run_id) == [0, 1]
    names = {a.path for a in MlflowClient(uri).list_artifacts(run.info.run_id)}
    assert {"metrics.jsonl", "accuracy_matrix.csv", "config.yaml"} <= names


def test_nan_loss_stops_with_experience_and_iteration(tmp_path: Path):
    with pytest.raises(NonFiniteLossError, match=r"at experience 0, iteration \d+"):
        run_here(tmp_path, "optimizer=sgd", "optimizer.lr=1e30", "optimizer.momentum=0")
    (run,) = runs_of(local_store(tmp_path))
    assert run.info.status == "FAILED"


def test_unreachable_server_fails_fast_before_any_work(tmp_path: Path):
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(TrackingUnavailableError, match=uri):
        run_here(tmp_path, f"tracking.tracking_uri={uri}")
    assert time.monotonic() - start < 10
    assert not (tmp_path / "runs").exists()


def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path: Path):
    def final_metrics(root: Path, seed: int) -> list[dict]:
        result = run_here(root, "tracking=none", *FAST, f"seed={seed}")
        drop = ("time/", "train/samples_per_s")
        return [{k: v for k, v in line.items() if not k.startswith(drop)}
                for line in read_metrics(result.output_dir)]

    first = final_metrics(tmp_path / "a", 0)
    assert first == final_metrics(tmp_path / "b", 0)
    assert first != final_metrics(tmp_path / "c", 1)


@pytest.mark.parametrize("buffer", [
    "parametric", "reservoir",
    pytest.param("class_balanced", marks=pytest.mark.slow),
    pytest.param("experience_balanced", marks=pytest.mark.slow),
])
def test_resume_after_a_crash_gives_the_uninterrupted_matrix(tmp_path: Path, buffer: str):
    """Crash at experience 2, resume with the same config (the crashing loader allowed to
    differ): the matrix equals an uninterrupted run's, in the same folder and MLflow run."""
    reference = run_here(tmp_path / "reference", "tracking=none", f"buffer={buffer}", *FAST)
    root = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="boom"):
        run_here(root, f"buffer={buffer}", *FAST, *CRASH_AT_2)
    resumed = run_here(root, f"buffer={buffer}", *FAST, "resume=true",
                       "resume_allow_changes=[dataloader]")
    assert resumed.matrix.rows == reference.matrix.rows
    uri = local_store(root)
    (run,) = runs_of(uri)
    assert run.info.status == "FINISHED" and run.info.run_id == resumed.run_id
    assert steps(uri, run.info.run_id) == [0, 1, 2, 3, 4]
    assert [line["step"] for line in read_metrics(resumed.output_dir)] == [0, 1, 2, 3, 4]


def test_resume_refuses_a_changed_config_naming_the_keys(tmp_path: Path):
    with pytest.raises(RuntimeError):
        run_here(tmp_path, "tracking=none", *FAST, *CRASH_AT_2)
    (folder,) = (tmp_path / "runs" / "in-process").iterdir()
    with pytest.raises(ResumeError, match=r"buffer.max_size \(200 -> 500\)"):
        run_here(tmp_path, "tracking=none", *FAST, *CRASH_AT_2, f"resume={folder}",
                 "buffer.max_size=500")
    with pytest.raises(ResumeError, match="no run with this exact config"):
        run_here(tmp_path, "tracking=none", *FAST, *CRASH_AT_2, "resume=true", "seed=1")
    info = json.loads((folder / "run_info.json").read_text())
    assert info["status"] == "FAILED", "a refused resume must not touch the run's folder"


def test_resume_of_a_run_killed_before_its_first_checkpoint_restarts_it(tmp_path: Path):
    with pytest.raises(RuntimeError):
        run_here(tmp_path, *FAST, "dataloader._target_=tests.crash_plugins.CrashingReplay",
                 "+dataloader.crash_at=0")
    (first,) = runs_of(local_store(tmp_path))
    (folder,) = (tmp_path / "runs" / "in-process").iterdir()
    assert not (folder / "checkpoint.pt").exists()
    resumed = run_here(tmp_path, *FAST, "resume=true", "resume_allow_changes=[dataloader]")
    assert resumed.output_dir == folder and resumed.run_id == first.info.run_id
    (run,) = runs_of(local_store(tmp_path))
    assert run.info.status == "FINISHED" and steps(local_store(tmp_path), run.info.run_id) == [
        0, 1, 2, 3, 4]


def test_a_second_resume_of_a_finished_run_does_nothing(tmp_path: Path, capsys):
    first = run_here(tmp_path, "tracking=none", *FAST)
    again = run_here(tmp_path, "tracking=none", *FAST, "resume=true")
    assert again.output_dir == first.output_dir and again.matrix.rows == first.matrix.rows
    assert "nothing to resume" in capsys.readouterr().out


def test_an_older_checkpoint_format_is_refused_in_one_line(tmp_path: Path):
    result = run_here(tmp_path, "tracking=none", *FAST)
    torch.save({"version": 1, "buffer": {}}, result.output_dir / "checkpoint.pt")
    with pytest.raises(ResumeError, match="checkpoint format 1, this cl_runner reads format 2"):
        run_here(tmp_path, "tracking=none", *FAST, "resume=true")
    (result.output_dir / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(ResumeError, match="cannot be read"):
        run_here(tmp_path, "tracking=none", *FAST, "resume=true")


@pytest.mark.parametrize("repeat", [pytest.param(i, marks=pytest.mark.slow) if i else i
                                    for i in range(20)])
def test_interrupt_inside_an_mlflow_call_ends_the_run_killed(tmp_path, monkeypatch, repeat):
    """SIGINT sent from inside the writer's first metrics upload (the call the race hit),
    while training waits at experience 2: the run ends KILLED with exactly the steps its
    folder recorded, never RUNNING."""
    original = MLflowRunLogger.log_metrics
    sent = threading.Event()

    def signalling_log_metrics(self, lines):
        if not sent.is_set():
            sent.set()
            os.kill(os.getpid(), signal.SIGINT)
            crash_plugins.UPLOADING.set()
            time.sleep(0.05)  # the main thread handles it while this call is in flight
        return original(self, lines)

    crash_plugins.UPLOADING.clear()
    monkeypatch.setattr(MLflowRunLogger, "log_metrics", signalling_log_metrics)
    with pytest.raises(RunInterrupted):
        run_here(tmp_path, *WAIT_AT_2, *FAST)
    uri = local_store(tmp_path)
    (run,) = runs_of(uri)
    (folder,) = (tmp_path / "runs" / "in-process").iterdir()
    recorded = [line["step"] for line in read_metrics(folder)]
    assert sent.is_set() and recorded == [0, 1]
    assert run.info.status == "KILLED"
    assert steps(uri, run.info.run_id) == recorded
    assert json.loads((folder / "run_info.json").read_text())["status"] == "KILLED"


class _BrokenServer(http.server.BaseHTTPRequestHandler):
    """Answers /health like MLflow and the API like a broken proxy (set by ``mode``)."""

    mode = "500"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/health":
            self._reply(200, b"OK", "text/plain")
        elif self.mode == "500":
            self._reply(500, b'{"error_code": "INTERNAL_ERROR"}', "application/json")
        elif self.mode == "html":
            self._reply(200, b"<html><body>Sign in</body></html>", "text/html")
        else:
            time.sleep(30)

    def _reply(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(("mode", "problem"), [
    ("500", "HTTP 500"), ("html", "something other than JSON"),
    pytest.param("hang", "timed out", marks=pytest.mark.slow),
])
def test_a_server_that_answers_health_but_not_its_api_is_refused_in_one_line(
        tmp_path: Path, mode: str, problem: str):
    handler = type("Handler", (_BrokenServer,), {"mode": mode})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        started = time.monotonic()
        with pytest.raises(TrackingUnavailableError, match=problem) as err:
            run_here(tmp_path, f"tracking.tracking_uri={uri}")
        assert time.monotonic() - started < 10 and "\n" not in str(err.value)
        assert not (tmp_path / "runs").exists()
    finally:
        server.shutdown()
