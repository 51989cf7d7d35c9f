"""`cl-run`: check every job of the command line, then let Hydra run them.

Before Hydra starts (and creates any folder), each job the command would run is composed and
validated (``config.compose.preflight``): a bad setting, in any job of a sweep, is one line
and exit code 2, with nothing written. Only Hydra and OmegaConf are imported up front, so
``--help`` and config errors answer without loading torch or MLflow.
"""

from __future__ import annotations

import atexit
import gc
import logging
import shutil
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from cl_runner.config.schema import register

EXIT_USER_ERROR, EXIT_RUN_FAILED = 2, 1
HYDRA_ONLY = {".hydra"}  # what Hydra writes into a job folder before the job runs

register()


def _job_tags() -> dict[str, str]:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    tags = {"cl_runner.overrides": " ".join(hc.overrides.task)}
    if hc.mode == RunMode.MULTIRUN:
        tags["sweep"] = str(Path(hc.sweep.dir).resolve())
        tags["sweep.job_num"] = str(hc.job.num)
        study = _study_name(hc)
        if study is not None:
            tags["study"] = study
            tags["study.objective"] = "accuracy/average_seen"
    return tags


def _study_name(hc: DictConfig) -> str | None:
    """The Optuna study a trial belongs to (``hydra.sweeper.study_name``, else the sweep
    folder's name); None when the sweep is not an Optuna study."""
    if "optuna" not in str(hc.sweeper.get("_target_", "")).lower():
        return None
    return str(hc.sweeper.get("study_name") or Path(hc.sweep.dir).name)


class TrialFailed(RuntimeError):
    """An Optuna trial whose run failed. The sweep goes on as with NaN elsewhere, but Optuna
    2.x refuses a NaN result (the Hydra sweeper would stop the study): a raised error is a
    FAILED trial (the presets allow any share of them: ``hydra.sweeper.max_failure_rate``)."""


def _note_sweep_resume(run_id: str | None, output_dir: Path, tags: dict[str, str]) -> None:
    """A resumed sweep (``resume=true``) that continued, or found finished, a run of an earlier
    sweep: the MLflow run now belongs to this sweep (``sweep``, ``sweep.job_num``) and keeps
    the one before in ``sweep.previous``, so that the newest sweep's tag selects every
    configuration of the command once (the UI's filter, ``cl-report --sweep``)."""
    from cl_runner.tracking.store import limit_http_retries
    from cl_runner.tracking.uploader import read_tracking

    tracking = read_tracking(output_dir)
    if run_id is None or not tracking.get("tracking_uri"):
        return
    limit_http_retries()
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking["tracking_uri"])
        previous = client.get_run(run_id).data.tags.get("sweep")
        if previous == tags["sweep"]:
            return
        if previous:
            client.set_tag(run_id, "sweep.previous", previous)
        client.set_tag(run_id, "sweep", tags["sweep"])
        client.set_tag(run_id, "sweep.job_num", tags["sweep.job_num"])
    except Exception as err:  # the run's results are safe; only its sweep tag is stale
        print(f"cl-run: warning: could not tag run {run_id} with this sweep "
              f"({type(err).__name__}: {err})", file=sys.stderr)


def _fail(message: str, code: int) -> None:
    print(f"cl-run: error: {message}", file=sys.stderr)
    sys.exit(code)


def remove_unused_folder(folder: Path, keep: Path) -> None:
    """Remove a job folder that holds only what Hydra put there (a refused or resumed run),
    and the parents it leaves empty, up to ``keep``."""
    if not folder.is_dir() or any(p.name not in HYDRA_ONLY and p.suffix != ".log"
                                  for p in folder.iterdir()):
        return
    shutil.rmtree(folder, ignore_errors=True)
    for parent in folder.parents:
        if parent == keep or not parent.is_relative_to(keep) or any(parent.iterdir()):
            break
        parent.rmdir()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _task(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from cl_runner.errors import RunFailure, UserError
    from cl_runner.run import run_job
    from cl_runner.signals import RunInterrupted

    hc = HydraConfig.get()
    output_dir = Path(hc.runtime.output_dir)
    output_root = Path(hc.runtime.cwd, cfg.paths.output_root)
    tags = _job_tags()
    try:
        result = run_job(cfg, output_dir, tags=tags, overrides=tuple(hc.overrides.task),
                         cwd=hc.runtime.cwd)
    except UserError as err:
        remove_unused_folder(output_dir, output_root)
        _fail(str(err), EXIT_USER_ERROR)
    except RunFailure as err:
        print(f"cl-run: error: {err}", file=sys.stderr)
        if hc.mode != RunMode.MULTIRUN:
            sys.exit(EXIT_RUN_FAILED)
        if "study" in tags:
            raise TrialFailed(str(err)) from None
        return float("nan")  # the sweep goes on; this job's run is FAILED
    except RunInterrupted as err:
        print(f"cl-run: stopped by {err}; the run is marked KILLED", file=sys.stderr)
        sys.exit(err.exit_code)
    if result.output_dir != output_dir:
        remove_unused_folder(output_dir, output_root)
        if hc.mode == RunMode.MULTIRUN:
            _note_sweep_resume(result.run_id, result.output_dir, tags)
    return result.final_average_accuracy


def _preflight(argv: list[str]) -> None:
    """Compose and validate every job (exit 2 on the first bad one), unless Hydra is only
    asked to print something (--help, --cfg, --info, shell completion)."""
    from hydra._internal.utils import get_args_parser

    from cl_runner.errors import UserError

    args = get_args_parser().parse_args(argv)
    if (args.help or args.hydra_help or args.cfg or args.info or args.shell_completion
            or args.experimental_rerun):
        return
    overrides = list(args.overrides)
    if args.config_dir:
        overrides.append(f"hydra.searchpath=[file://{Path(args.config_dir).resolve()}]")
    from cl_runner.config.compose import preflight

    try:
        preflight(overrides, args.multirun)
    except UserError as err:
        _fail(str(err), EXIT_USER_ERROR)


def main() -> None:
    """Console entry point.

    At exit the interpreter's last garbage collections would walk every object that torch
    and the compiler stack ``torch.optim`` imports have created (0.8 s of a 7 s run on 2
    cores) only to free memory the OS takes back anyway: freezing them skips that walk.
    """
    from cl_runner.allocator import keep_freed_memory

    logging.raiseExceptions = False  # a full disk must not turn log writes into tracebacks
    _preflight(sys.argv[1:])
    keep_freed_memory()
    atexit.unregister(gc.freeze)  # once, however often main() runs in one process
    atexit.register(gc.freeze)
    _task()


if __name__ == "__main__":
    main()
