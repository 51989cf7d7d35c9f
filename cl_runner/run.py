"""One job: validate, build, train and evaluate experience by experience, record everything."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from cl_runner.console import ProgressPlugin, console, print_experience_line, print_summary
from cl_runner.evaluation.matrix import AccuracyMatrix
from cl_runner.experiment import (
    buffer_composition,
    buffer_group_kind,
    build,
    config_dict,
    experience_metrics,
)
from cl_runner.naming import flatten, run_name
from cl_runner.recording import RunRecorder
from cl_runner.tracking.run_logger import MLflowRunLogger
from cl_runner.tracking.store import prepare_experiment, resolve_tracking_uri

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


def open_tracker(cfg: DictConfig, name: str, tags: dict[str, str]) -> MLflowRunLogger | None:
    """The MLflow run of this job, or None when tracking is off."""
    if not cfg.tracking.enabled:
        return None
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # store migrations are not news
    uri = resolve_tracking_uri(cfg.tracking.tracking_uri, cfg.paths.output_root)
    experiment_id = prepare_experiment(uri, cfg.tracking.experiment_name)
    return MLflowRunLogger(uri, experiment_id, name, tags=tags)


def run_experiment(
    cfg: DictConfig, output_dir: str | Path, tags: dict[str, str] | None = None
) -> RunResult:
    """Train on every experience, evaluate on the whole test stream after each, record."""
    name = run_name(cfg)
    progress = ProgressPlugin(0)
    parts = build(cfg, plugins=[progress])
    bench = parts.benchmark
    progress.n_experiences = bench.n_experiences
    tracker = open_tracker(cfg, name, tags or {})
    recorder = RunRecorder(output_dir, tracker)
    if tracker is not None:
        tracker.log_params(flatten(config_dict(cfg)))
    matrix = AccuracyMatrix(bench.n_experiences)
    status = "FAILED"
    try:
        for exp in bench.train_stream:
            parts.strategy.train(exp)
            parts.strategy.eval(bench.test_stream)
            matrix.add_row([parts.stats.accuracies[j] for j in range(bench.n_experiences)])
            counts, groups = buffer_composition(parts.buffer, bench.n_classes)
            metrics = experience_metrics(
                matrix, parts.stats, counts, groups, buffer_group_kind(cfg)
            )
            recorder.log_experience(exp.current_experience, metrics, counts)
            print_experience_line(exp.current_experience, bench.n_experiences, metrics)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        progress.close()
        recorder.write_tables(matrix)
        recorder.finish(status)
    where = tracker.uri + f" (run {tracker.run_id})" if tracker else str(output_dir)
    print_summary(matrix, name, where)
    console.print(f"output folder: {output_dir}")
    return RunResult(name, matrix, tracker.run_id if tracker else None, Path(output_dir))
