"""One job: train and evaluate experience by experience, record, checkpoint; or resume.

The run folder is the record: every experience's metrics line is written there (and
checkpointed) before anything else happens, and a background writer sends the folder to
MLflow. SIGINT/SIGTERM end the run KILLED, an exception FAILED, both with every finished
experience recorded and uploaded.

``protocol=online`` walks the stream chunk by chunk (``_train_online``): the strategy trains
on runs of chunks between the points where something is due (an anytime evaluation, the end
of an original experience, a checkpoint), so a chunk costs the strategy's own per-experience
work and nothing of the runner's. Anytime evaluation lines (step = samples seen) are written
as they are taken, in either protocol (see ``cl_runner.evaluation.anytime``).
"""

from __future__ import annotations

import itertools
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
from cl_runner.evaluation.anytime import AnytimeAccuracy, AnytimeTrigger, subsample_stream
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


class AnytimeRecorder:
    """Takes anytime evaluation points and writes their lines (step = samples seen)."""

    def __init__(self, protocol: Any, folder: RunFolder, guard: InterruptGuard) -> None:
        self.protocol, self.folder, self.guard = protocol, folder, guard
        self.enabled = protocol.anytime
        self.parts: Any = None
        self.tracker = AnytimeAccuracy(0)
        self.stream: list[Any] = []
        self.full_stream = True
        self.eval_seconds = 0.0

    def setup(self, parts: Any, seed: int) -> None:
        test = parts.benchmark.test_stream
        self.parts = parts
        self.tracker = AnytimeAccuracy(len(test))
        self.stream = subsample_stream(test, self.protocol.eval_subsample, seed)
        self.full_stream = sum(len(e.dataset) for e in self.stream) == sum(
            len(e.dataset) for e in test)

    def trigger(self) -> AnytimeTrigger:
        """The batch protocol's plugin: a point after every ``eval_every`` samples."""
        return AnytimeTrigger(self.protocol.eval_every, lambda strategy, samples: self.point(
            strategy, samples, strategy.experience.current_experience))

    def point(self, strategy: Any, samples: int, current: int, evaluated: bool = False) -> None:
        """Evaluate (unless the last evaluation was of this model on the whole test stream:
        ``evaluated``) and write the point's line."""
        stats = self.parts.stats
        if not (evaluated and self.full_stream):
            t0 = time.perf_counter()
            strategy.eval(self.stream)
            self.eval_seconds += time.perf_counter() - t0
        line = self.tracker.add_point(current, stats.accuracies, stats.stream_accuracy)
        with self.guard.protected():
            self.folder.append_metrics(samples, line)

    def summary(self, trained: int, stats: Any) -> dict[str, float]:
        """What an experience's line adds (nothing without anytime evaluation)."""
        if not self.enabled:
            return {}
        return {**self.tracker.summary(trained, stats.accuracies[trained]),
                "time/anytime_eval_s": self.eval_seconds}

    def state_dict(self) -> dict[str, Any]:
        return {"tracker": self.tracker.state_dict(), "eval_seconds": self.eval_seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.load_state_dict(state["tracker"])
        self.eval_seconds = state["eval_seconds"]


class StreamProgress(ProgressPlugin):
    """A progress bar per original experience of an online stream, over its chunks' steps
    (a bar per chunk would cost more than the chunk)."""

    def __init__(self) -> None:
        super().__init__()
        self.total, self.label = 0, 0

    def begin(self, experience: int, total_steps: int) -> None:
        self.close()
        self.label, self.total = experience, total_steps

    def _start(self, strategy: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]experience {task.fields[exp]}/{task.fields[n]} (online)"),
            BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=self.total, exp=self.label + 1,
                                             n=self.n_experiences or "?")

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """A chunk ended: the bar goes on until the original experience ends."""


def _run(
    cfg: DictConfig, plan: RunPlan, uri: str | None, tags: dict[str, str], writer_mode: str
) -> RunResult:
    from hydra.utils import instantiate

    state = plan.checkpoint
    with InterruptGuard() as guard:
        with guard.protected():
            folder, info = _start_record(cfg, plan, uri, tags)
            writer = BackgroundWriter(folder.path, writer_mode) if uri is not None else None
        status = "FAILED"
        measured = Measurements(0, 0)
        protocol = instantiate(cfg.protocol)
        progress = StreamProgress() if protocol.online else ProgressPlugin()
        threads = None
        try:
            # Setup (torch imported only now, while the writer imports MLflow on the other core;
            # data loaded) is protected: a signal raised inside a library's import leaves that
            # library half-imported, so it is acted on once setup ends.
            with guard.protected():
                from cl_runner.experiment import buffer_metrics, build
                from cl_runner.training.guards import FiniteLossGuard

                threads = _set_threads(protocol.num_threads)
                anytime = AnytimeRecorder(protocol, folder, guard)
                triggers = [anytime.trigger()] if anytime.enabled and not protocol.online else []
                parts = build(cfg, plugins=[FiniteLossGuard(), progress, *triggers])
            bench = parts.benchmark
            anytime.setup(parts, int(cfg.seed))
            progress.n_experiences = bench.n_experiences
            measured = Measurements(bench.n_experiences, bench.n_classes)
            start = 0
            if state is not None:
                parts.strategy.load_state_dict(state["strategy"])
                set_rng_state(state["rng"])
                measured.load_state_dict(state["measured"])
                if "anytime" in state:
                    anytime.load_state_dict(state["anytime"])
                start = state["next_experience"]
                console.print(f"resuming {folder.path}: {start} of {bench.n_experiences} "
                              "experiences done")
            if protocol.online:
                _train_online(cfg, protocol, parts, folder, measured, state, guard, progress,
                              anytime)
            for exp in [] if protocol.online else bench.train_stream[start:]:
                parts.strategy.train(exp)
                parts.strategy.eval(bench.test_stream)
                counts, buffer_values = buffer_metrics(parts, bench.n_classes)
                measured.add(exp.classes_in_this_experience, parts.stats, counts)
                metrics = {**measured.metrics(parts.stats), **buffer_values,
                           **anytime.summary(exp.current_experience, parts.stats)}
                with guard.protected():
                    folder.append_metrics(exp.current_experience, metrics)
                    save_checkpoint(folder.path, {
                        "next_experience": exp.current_experience + 1,
                        "n_experiences": bench.n_experiences,
                        "strategy": parts.strategy.state_dict(), "rng": rng_state(),
                        "measured": measured.state_dict(),
                        "metric_lines": folder.metric_lines(),
                        **({"anytime": anytime.state_dict()} if anytime.enabled else {}),
                    })
                print_experience_line(exp.current_experience, bench.n_experiences, metrics)
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            progress.close()
            _set_threads(threads)
            with guard.protected():
                _finish(folder, info, status, measured, writer, charts=bool(cfg.charts))
    return _report(folder, info, measured.experiences, status)


def _set_threads(n: int | None) -> int | None:
    """Set torch's intra-op threads to ``n`` (None: leave them); return the previous count."""
    if n is None:
        return None
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    return previous


def _train_online(
    cfg: DictConfig, protocol: Any, parts: Any, folder: RunFolder, measured: Measurements,
    state: dict[str, Any] | None, guard: InterruptGuard, progress: StreamProgress,
    anytime: AnytimeRecorder,
) -> None:
    """The online protocol: chunks in order; anytime points, experience lines and
    checkpoints between them, each after the chunk where it falls due."""
    from cl_runner.benchmarks.online import split_online_stream
    from cl_runner.experiment import buffer_metrics

    bench, strategy, stats = parts.benchmark, parts.strategy, parts.stats
    stream = split_online_stream(
        bench.train_stream, protocol.experience_size, shuffle=protocol.shuffle,
        drop_last=protocol.drop_last, access_task_boundaries=protocol.access_task_boundaries,
        seed=int(cfg.seed))
    ranges = [stream.chunk_range(k) for k in range(bench.n_experiences)]
    empty = [k for k, r in enumerate(ranges) if not len(r)]
    if empty:
        raise ValueError(f"experience {empty[0]} has fewer than protocol.experience_size="
                         f"{protocol.experience_size} samples and protocol.drop_last=true: "
                         "it would train nothing")
    ends = {r[-1]: k for k, r in enumerate(ranges)}
    firsts = {r[0] for r in ranges}
    passes, mb = strategy.train_epochs, strategy.train_mb_size
    sizes = stream.chunk_sizes()
    seen = [0, *itertools.accumulate(n * passes for n in sizes)]  # seen[i]: before chunk i

    def crosses(i: int, every: int | None) -> bool:  # chunk i reaches a multiple of every
        return every is not None and every > 0 and seen[i + 1] // every > seen[i] // every

    def steps(k: int) -> int:
        return sum(-(-sizes[i] // mb) for i in ranges[k]) * passes

    def stop(i: int) -> bool:
        return (i in ends or crosses(i, protocol.eval_every)
                or crosses(i, protocol.checkpoint_every))

    stats.accumulate = True
    start, train_s = 0, 0.0
    online_state = (state or {}).get("online")
    if online_state is not None:
        start, train_s = online_state["next_chunk"], online_state["period_seconds"]
    if start < len(stream):
        if start in firsts:
            stats.start_period()
        else:
            stats.load_period_state(online_state["period"])
        progress.begin(stream.origin_of(start), steps(stream.origin_of(start)))
    i = start
    while i < len(stream):
        j = next(j for j in range(i, len(stream)) if stop(j))
        t0 = time.perf_counter()
        strategy.train(map(stream.__getitem__, range(i, j + 1)))
        train_s += time.perf_counter() - t0
        k, boundary = stream.origin_of(j), j in ends
        metrics: dict[str, float] = {}
        if boundary:
            progress.close()
            stats.end_period(train_s)
            strategy.eval(bench.test_stream)
            counts, buffer_values = buffer_metrics(parts, bench.n_classes)
            measured.add(bench.train_stream[k].classes_in_this_experience, stats, counts)
            metrics = {**measured.metrics(stats), **buffer_values,
                       "train/steps_per_s": stats.train_iterations / train_s if train_s else 0.0,
                       "train/samples_seen": float(seen[j + 1])}
        if crosses(j, protocol.eval_every):
            anytime.point(strategy, seen[j + 1], k, evaluated=boundary)
        if boundary:
            metrics.update(anytime.summary(k, stats))
        with guard.protected():
            if boundary:
                folder.append_metrics(k, metrics)
            if boundary or crosses(j, protocol.checkpoint_every):
                save_checkpoint(folder.path, {
                    "next_experience": k + 1 if boundary else k,
                    "n_experiences": bench.n_experiences,
                    "strategy": strategy.state_dict(), "rng": rng_state(),
                    "measured": measured.state_dict(),
                    "metric_lines": folder.metric_lines(),
                    "online": {"next_chunk": j + 1, "period": stats.period_state(),
                               "period_seconds": 0.0 if boundary else train_s},
                    **({"anytime": anytime.state_dict()} if anytime.enabled else {}),
                })
        if boundary:
            print_experience_line(k, bench.n_experiences, metrics)
            train_s = 0.0
            if j + 1 < len(stream):
                stats.start_period()
                progress.begin(k + 1, steps(k + 1))
        i = j + 1


def _finish(
    folder: RunFolder, info: dict[str, Any], status: str, measured: Measurements,
    writer: BackgroundWriter | None, charts: bool,
) -> None:
    """Tables, final status, and the last upload: whatever ended the run.

    The time spent waiting for the writer to send what is left is kept in ``run_info.json``
    (``tracking_wait_s``): the only moment a run waits on tracking.
    """
    try:
        if measured.n_trained:
            folder.write_tables(measured, charts)
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
