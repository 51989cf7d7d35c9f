"""One job: train and evaluate experience by experience, record, checkpoint; or resume.

The run folder is the record: every experience's metrics line is written there (and
checkpointed) before anything else happens, and a background writer sends the folder to
MLflow. SIGINT/SIGTERM end the run KILLED, an exception FAILED, both with every finished
experience recorded and uploaded.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cl_runner.checkpoint import rng_state, save_checkpoint, set_rng_state
from cl_runner.config.schema import absolute, check_writable_folder, with_absolute_paths
from cl_runner.config.validate import validate
from cl_runner.console import ProgressPlugin, console, print_experience_line, print_summary
from cl_runner.evaluation.matrix import AccuracyMatrix
from cl_runner.evaluation.measurements import Measurements
from cl_runner.recording import CONFIG_FILE, RunFolder
from cl_runner.resume import RunPlan, config_key, current_config, plan_run
from cl_runner.signals import InterruptGuard
from cl_runner.tracking.store import (
    check_server,
    is_local_sqlite,
    resolve_tracking_uri,
    sqlite_path,
)
from cl_runner.tracking.uploader import read_tracking
from cl_runner.tracking.writer import BackgroundWriter


@dataclass
class RunResult:
    """What a job measured, returned to callers and tests."""

    name: str
    matrix: AccuracyMatrix
    run_id: str | None
    output_dir: Path
    status: str = "FINISHED"

    @property
    def final_average_accuracy(self) -> float:
        return self.matrix.average_accuracy()

    @property
    def average_forgetting(self) -> float:
        return self.matrix.average_forgetting()


def tracking_uri(cfg: DictConfig) -> str | None:
    """The run's tracking URI (None when tracking is off), checked before any work."""
    if not cfg.tracking.enabled:
        return None
    uri = resolve_tracking_uri(cfg.tracking.tracking_uri, cfg.paths.output_root)
    if is_local_sqlite(uri):
        check_writable_folder("tracking.tracking_uri", sqlite_path(uri).parent)
    check_server(uri, cfg.tracking.experiment_name)
    return uri


def run_job(
    cfg: DictConfig, output_dir: str | Path, tags: dict[str, str] | None = None,
    overrides: tuple[str, ...] = (), cwd: str | Path | None = None, writer: str = "process",
) -> RunResult:
    """Train on every experience, evaluate on the whole test stream after each, record.

    ``overrides`` are the command line's (validation tells chosen from default settings by
    them); ``cwd`` the directory relative paths refer to; ``writer`` runs the MLflow upload in
    a child ``"process"`` (cl-run) or a ``"thread"`` (library use, tests).
    """
    validate(cfg, overrides)
    cfg = with_absolute_paths(cfg, cwd)
    uri = tracking_uri(cfg)
    plan = plan_run(cfg, absolute(output_dir, cwd), current_config(cfg), uri,
                    missing_ok=tags is not None and "sweep" in tags)
    try:
        if _is_complete(plan):
            return _already_finished(plan)
        return _run(cfg, plan, uri, tags or {}, writer)
    finally:
        plan.release()


def _is_complete(plan: RunPlan) -> bool:
    """Whether a resumed run trained every experience and ended FINISHED (a run killed
    while finishing goes through ``_run`` again, which only finishes it)."""
    state = plan.checkpoint
    if state is None or state["next_experience"] < state["n_experiences"]:
        return False
    return json.loads((plan.folder / "run_info.json").read_text()).get("status") == "FINISHED"


def _already_finished(plan: RunPlan) -> RunResult:
    """A resume of a run that is complete: nothing to do (a sweep resume skips it)."""
    info = json.loads((plan.folder / "run_info.json").read_text())
    matrix = AccuracyMatrix(plan.checkpoint["n_experiences"])
    for row in plan.checkpoint["measured"]["experience_rows"]:
        matrix.add_row(row)
    console.print(f"nothing to resume: {plan.folder} trained all {matrix.n} experiences "
                  f"(status {info.get('status')})")
    return RunResult(info["name"], matrix, read_tracking(plan.folder).get("run_id"), plan.folder,
                     info.get("status", "FINISHED"))


def _start_record(
    cfg: DictConfig, plan: RunPlan, uri: str | None, tags: dict[str, str]
) -> tuple[RunFolder, dict[str, Any]]:
    """Write the folder's config and run info (kept from the first start when resuming)."""
    from cl_runner.naming import run_name

    folder = RunFolder(plan.folder)
    if plan.resumed:
        info = json.loads((folder.path / "run_info.json").read_text())
        info["status"] = "RUNNING"
        folder.keep_metric_lines(plan.checkpoint["metric_lines"] if plan.checkpoint else 0)
    else:
        info = {"name": run_name(cfg), "config_key": config_key(cfg), "tags": tags,
                "experiment_name": cfg.tracking.experiment_name, "tracking_uri": uri,
                "status": "RUNNING"}
        folder.write_text(CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    folder.write_info(info)
    return folder, info


def _run(
    cfg: DictConfig, plan: RunPlan, uri: str | None, tags: dict[str, str], writer_mode: str
) -> RunResult:
    from cl_runner.experiment import buffer_metrics, build
    from cl_runner.training.guards import FiniteLossGuard

    state = plan.checkpoint
    with InterruptGuard() as guard:
        with guard.protected():
            folder, info = _start_record(cfg, plan, uri, tags)
            writer = BackgroundWriter(folder.path, writer_mode) if uri is not None else None
        status = "FAILED"
        measured = Measurements(0, 0)
        progress = ProgressPlugin()
        try:
            parts = build(cfg, plugins=[FiniteLossGuard(), progress])
            bench = parts.benchmark
            progress.n_experiences = bench.n_experiences
            measured = Measurements(bench.n_experiences, bench.n_classes)
            start = 0
            if state is not None:
                parts.strategy.load_state_dict(state["strategy"])
                set_rng_state(state["rng"])
                measured.load_state_dict(state["measured"])
                start = state["next_experience"]
                console.print(f"resuming {folder.path}: {start} of {bench.n_experiences} "
                              "experiences done")
            for exp in bench.train_stream[start:]:
                parts.strategy.train(exp)
                parts.strategy.eval(bench.test_stream)
                counts, buffer_values = buffer_metrics(parts, bench.n_classes)
                measured.add(exp.classes_in_this_experience, parts.stats, counts)
                metrics = {**measured.metrics(parts.stats), **buffer_values}
                with guard.protected():
                    folder.append_metrics(exp.current_experience, metrics)
                    save_checkpoint(folder.path, {
                        "next_experience": exp.current_experience + 1,
                        "n_experiences": bench.n_experiences,
                        "strategy": parts.strategy.state_dict(), "rng": rng_state(),
                        "measured": measured.state_dict(),
                        "metric_lines": folder.metric_lines(),
                    })
                print_experience_line(exp.current_experience, bench.n_experiences, metrics)
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            progress.close()
            with guard.protected():
                _finish(folder, info, status, measured, writer)
    return _report(folder, info, measured.experiences, status)


def _finish(
    folder: RunFolder, info: dict[str, Any], status: str, measured: Measurements,
    writer: BackgroundWriter | None,
) -> None:
    """Tables, final status, and the last upload: whatever ended the run.

    The time spent waiting for the writer to send what is left is kept in ``run_info.json``
    (``tracking_wait_s``): the only moment a run waits on tracking.
    """
    try:
        if measured.n_trained:
            folder.write_tables(measured)
        info["status"] = status
        folder.write_info(info)
    finally:
        if writer is not None:
            started = time.perf_counter()
            writer.finish(status)
            info["tracking_wait_s"] = round(time.perf_counter() - started, 4)
            folder.write_info(info)


def _report(
    folder: RunFolder, info: dict[str, Any], matrix: AccuracyMatrix, status: str
) -> RunResult:
    tracking = read_tracking(folder.path)
    run_id = tracking.get("run_id")
    if tracking.get("synced"):
        where = f"{tracking['tracking_uri']} (run {run_id})"
    else:
        where = str(folder.path)
    if matrix.rows:
        print_summary(matrix, info["name"], where)
    console.print(f"output folder: {folder.path}")
    return RunResult(info["name"], matrix, run_id, folder.path, status)
