"""A sweep on a real SLURM cluster (single node, Debian's slurm-wlm and munge, started by
scripts/slurm_cluster.py) logging to a real `mlflow server`: 4 jobs of a job array, one
cancelled with scancel mid-run (SIGTERM: its run ends KILLED, exit 143), then the same
command with resume=true skips the 3 finished jobs and continues the cancelled one."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, cl_run, history, runs_of, start_cl_run
from tests.mlflow_server import MlflowServer

SCRIPT = REPO / "scripts" / "slurm_cluster.py"
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
HAVE_SLURM = all(shutil.which(b, path=SBIN) for b in ("slurmctld", "slurmd", "munged", "sbatch"))

needs_a_cluster = pytest.mark.skipif(
    not HAVE_SLURM or os.geteuid() != 0,
    reason="needs root and Debian's slurm-wlm and munge (.ci/run installs them)")


def test_a_gpu_sweep_for_slurm_passes_preflight_on_a_machine_without_gpus(tmp_path,
                                                                          monkeypatch):
    """The submitting machine's GPUs are not the nodes': device=cuda is checked by each job
    on its node, not in the parent; with a launcher that runs here it is refused at once."""
    import importlib

    from cl_runner.config.compose import preflight
    from cl_runner.errors import UserError

    validate = importlib.import_module("cl_runner.config.validate")  # the module
    monkeypatch.setattr(validate, "cuda_device_count", lambda: 0)
    monkeypatch.chdir(tmp_path)
    sweep = ["device=cuda", "buffer.max_size=20,50", "tracking.tracking_uri=http://HOST:5000"]
    slurm = ["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
             "hydra.launcher.gpus_per_task=1", "+hydra.launcher.additional_parameters.requeue=true"]
    assert preflight([*slurm, *sweep], multirun=True) == 2
    with pytest.raises(UserError, match="device='cuda' is not allowed"):
        preflight(["hydra/launcher=submitit_local", *sweep], multirun=True)


def free_port_pair() -> int:
    """A TCP port P with P+1 free too (slurmctld and slurmd)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """slurmctld + slurmd + munged in a short temporary folder; the clients' environment."""
    root = Path(tempfile.mkdtemp(prefix="slurm", dir="/tmp"))  # unix socket paths are short
    start = subprocess.run(
        [sys.executable, str(SCRIPT), "start", str(root), "--port", str(free_port_pair()),
         "--cpus", "4", "--kill-wait", "30"], capture_output=True, text=True, timeout=120)
    try:
        assert start.returncode == 0, start.stderr
        info = json.loads((root / "cluster.json").read_text())
        yield {"SLURM_CONF": info["slurm_conf"],
               "PATH": f"{info['bin_dir']}{os.pathsep}{os.environ['PATH']}"}
    finally:
        subprocess.run([sys.executable, str(SCRIPT), "stop", str(root)], capture_output=True,
                       timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    mlflow = MlflowServer(tmp_path_factory.mktemp("server")).start()
    try:
        yield mlflow.uri
    finally:
        mlflow.stop()


def wait_until(condition, what: str, proc=None, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"cl-run ended early ({what}):\n{proc.communicate()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def statuses(uri: str) -> list[str]:
    try:
        return sorted(r.info.status for r in runs_of(uri))
    except AssertionError:  # the experiment does not exist yet
        return []


def job_logs(root: Path, pattern: str) -> str:
    return "".join(p.read_text(errors="replace") for p in root.glob(f"multiruns/*/*/.submitit/"
                                                                      f"*/{pattern}"))


@pytest.mark.slow
@needs_a_cluster
def test_sweep_on_slurm_scancel_and_resume(cluster, server, tmp_path):
    marker = tmp_path / "paused"
    command = ("-m", "hydra/launcher=submitit_slurm", "hydra.launcher.partition=debug",
               "hydra.launcher.timeout_min=10", "hydra.launcher.cpus_per_task=1",
               "hydra.launcher.mem_gb=1", f"tracking.tracking_uri={server}",
               "buffer.max_size=20,50", "seed=0,1", "strategy.train_epochs=1",
               "dataloader._target_=tests.sweep_plugins.PauseNth", f"+dataloader.marker={marker}")
    proc = start_cl_run(tmp_path, *command, env=cluster)
    try:
        wait_until(marker.exists, "a job to pause", proc)
        job = json.loads(marker.read_text())["slurm_job"]
        assert job, "the paused job did not run under SLURM"
        subprocess.run(["scancel", job], env={**os.environ, **cluster}, check=True, timeout=60)
        wait_until(lambda: statuses(server) == ["FINISHED"] * 3 + ["KILLED"],
                   "3 FINISHED runs and the cancelled one KILLED", timeout=480)
        # the writer marks the run KILLED before the job exits; srun logs the exit after it
        wait_until(lambda: "Exited with exit code" in job_logs(tmp_path, f"{job}_0_log.err"),
                   "srun to log the cancelled job's exit", timeout=120)
    finally:
        # the launcher notices a cancelled job only when it next polls SLURM (up to minutes)
        # and then fails the sweep; the other jobs are independent of it
        proc.terminate()
        proc.communicate(timeout=60)
    err = job_logs(tmp_path, f"{job}_0_log.err")
    assert "cl-run: stopped by SIGTERM; the run is marked KILLED" in err
    assert "Exited with exit code 143" in err
    (killed,) = [r for r in runs_of(server) if r.info.status == "KILLED"]
    done = [s for s, _ in history(server, killed.info.run_id, "accuracy/average_seen")]
    assert done == [0, 1]  # killed mid-way through experience 2

    cl_run(tmp_path, *command, "resume=true", env=cluster, timeout=600)
    out = job_logs(tmp_path, "*_0_log.out")
    assert out.count("nothing to resume") == 3 and out.count("resuming ") == 1
    runs = runs_of(server)
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert killed.info.run_id in {r.info.run_id for r in runs}
    for run in runs:
        for key in ("accuracy/average_seen", "accuracy/stream", "buffer/size"):
            assert [s for s, _ in history(server, run.info.run_id, key)] == list(range(5))
    assert not (tmp_path / "mlflow.db").exists(), "a job wrote to a local store"
