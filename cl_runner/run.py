"""One job: build, train and evaluate experience by experience, record and checkpoint."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cl_runner.checkpoint import (
    buffer_state,
    load_buffer_state,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cl_runner.console import ProgressPlugin, console, print_experience_line, print_summary
from cl_runner.evaluation.matrix import AccuracyMatrix
from cl_runner.experiment import (
    Components,
    buffer_composition,
    buffer_group_kind,
    build,
    config_dict,
    experience_metrics,
)
from cl_runner.naming import flatten, run_name
from cl_runner.recording import RunRecorder
from cl_runner.resume import config_key, find_resume_folder
from cl_runner.tracking.run_logger import MLflowRunLogger
from cl_runner.tracking.store import (
    check_server,
    limit_http_retries,
    prepare_experiment,
    resolve_tracking_uri,
)
from cl_runner.training.guards import FiniteLossGuard

log = logging.getLogger(__name__)

@dataclass
class RunResult:
    """What a finished job measured, returned to callers and tests."""

    name: str
    matrix: AccuracyMatrix
    run_id: str | None
    output_dir: Path

    @property
    def final_average_accuracy(self) -> float:
        return self.matrix.average_accuracy()

    @property
    def average_forgetting(self) -> float:
        return self.matrix.average_forgetting()


def tracking_uri(cfg: DictConfig) -> str | None:
    """The run's tracking URI (None when tracking is off), checked to answer before any work."""
    if not cfg.tracking.enabled:
        return None
    uri = resolve_tracking_uri(cfg.tracking.tracking_uri, cfg.paths.output_root)
    check_server(uri)
    return uri


def open_tracker(
    cfg: DictConfig, uri: str | None, name: str, tags: dict[str, str], run_id: str | None = None
) -> MLflowRunLogger | None:
    """The MLflow run of this job (reopened when resuming), or None when tracking is off."""
    if uri is None:
        return None
    limit_http_retries()
    import mlflow  # noqa: F401 - configures its loggers on import; quieten them after

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # store migrations are not news
    experiment_id = prepare_experiment(uri, cfg.tracking.experiment_name)
    tracker = MLflowRunLogger(uri, experiment_id, name, tags=tags, run_id=run_id)
    if run_id is not None:
        tracker.reopen()
    return tracker


def _restore(parts: Components, state: dict[str, Any]) -> None:
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.strategy.clock.load_state_dict(state["clock"])
    if parts.buffer is not None:
        storages = [exp.dataset for exp in parts.benchmark.train_stream]
        load_buffer_state(parts.buffer, state["buffer"], storages)
    set_rng_state(state["rng"])


def _checkpoint(
    folder: Path, parts: Components, recorder: RunRecorder, next_exp: int
) -> None:
    storages = [exp.dataset for exp in parts.benchmark.train_stream]
    save_checkpoint(folder, {
        "version": 1,
        "next_experience": next_exp,
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "clock": parts.strategy.clock.state_dict(),
        "buffer": buffer_state(parts.buffer, storages) if parts.buffer is not None else None,
        "rng": rng_state(),
        "metrics": recorder.metrics,
        "composition": recorder.composition,
        "run_id": recorder.info.get("run_id"),
    })


def run_experiment(
    cfg: DictConfig, output_dir: str | Path, tags: dict[str, str] | None = None
) -> RunResult:
    """Train on every experience, evaluate on the whole test stream after each, record.

    With ``resume`` set, continue the checkpointed run in its own folder and MLflow run.
    """
    folder = find_resume_folder(cfg) if cfg.resume else Path(output_dir)
    uri = tracking_uri(cfg)
    state = load_checkpoint(folder) if cfg.resume else None
    name = run_name(cfg)
    progress = ProgressPlugin(0)
    parts = build(cfg, plugins=[FiniteLossGuard(), progress])
    bench = parts.benchmark
    progress.n_experiences = bench.n_experiences
    tracker = open_tracker(cfg, uri, name, tags or {}, run_id=state["run_id"] if state else None)
    info = {"name": name, "config_key": config_key(cfg), "tags": tags or {},
            "experiment_name": cfg.tracking.experiment_name}
    recorder = RunRecorder(folder, tracker, info=info,
                           warn=lambda msg: console.print(f"[yellow]warning:[/yellow] {msg}"))
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    matrix = AccuracyMatrix(bench.n_experiences)
    start = 0
    if state is None:
        recorder.send("log_params", flatten(config_dict(cfg)))
    else:
        _restore(parts, state)
        recorder.restore(state["metrics"], state["composition"])
        for metrics in state["metrics"]:
            matrix.add_row([metrics[f"accuracy/exp_{j:03d}"] for j in range(matrix.n)])
        start = state["next_experience"]
        console.print(f"resuming {folder} at experience {start + 1}/{bench.n_experiences}")
    status = "FAILED"
    try:
        for exp in bench.train_stream[start:]:
            parts.strategy.train(exp)
            parts.strategy.eval(bench.test_stream)
            matrix.add_row([parts.stats.accuracies[j] for j in range(bench.n_experiences)])
            counts, groups = buffer_composition(parts.buffer, bench.n_classes)
            metrics = experience_metrics(
                matrix, parts.stats, counts, groups, buffer_group_kind(cfg)
            )
            recorder.record(exp.current_experience, metrics, counts)
            _checkpoint(folder, parts, recorder, exp.current_experience + 1)
            recorder.publish()
            print_experience_line(exp.current_experience, bench.n_experiences, metrics)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        progress.close()
        recorder.write_tables(matrix)
        recorder.finish(status)
    where = f"{tracker.uri} (run {tracker.run_id})" if tracker else str(folder)
    print_summary(matrix, name, where)
    console.print(f"output folder: {folder}")
    return RunResult(name, matrix, tracker.run_id if tracker else None, folder)
