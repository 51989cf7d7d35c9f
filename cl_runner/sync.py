"""`cl-sync FOLDER`: upload a run folder to MLflow after the tracking server was away.

The folder holds everything the run measured (``metrics.jsonl``, ``config.yaml``,
``run_info.json``, tables and plots). Steps MLflow already has are not sent again; a run
missing from the server (or a different server) is created anew.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cl_runner.recording import RunRecorder, read_info, read_metrics

CONFIG_FILE = "config.yaml"


def _params(folder: Path) -> dict[str, str]:
    from omegaconf import OmegaConf

    from cl_runner.naming import flatten

    path = folder / CONFIG_FILE
    if not path.exists():
        return {}
    return flatten(OmegaConf.to_container(OmegaConf.load(path)))


def sync_folder(folder: str | Path, tracking_uri: str | None = None,
                experiment_name: str = "cl_runner") -> str:
    """Make the MLflow run of ``folder`` complete; return its run id."""
    from mlflow.exceptions import MlflowException

    from cl_runner.tracking.run_logger import MLflowRunLogger
    from cl_runner.tracking.store import check_server, limit_http_retries, prepare_experiment

    folder = Path(folder)
    info = read_info(folder)
    uri = tracking_uri or info["tracking_uri"]
    check_server(uri)
    limit_http_retries()
    experiment_id = prepare_experiment(uri, info.get("experiment_name", experiment_name))
    tracker = None
    if info.get("run_id"):
        try:
            tracker = MLflowRunLogger(uri, experiment_id, info["name"], run_id=info["run_id"])
            tracker.logged_steps("accuracy/stream")  # the run exists on this server
        except MlflowException:
            tracker = None
    if tracker is None:
        tracker = MLflowRunLogger(uri, experiment_id, info["name"], tags=info.get("tags", {}))
        tracker.log_params(_params(folder))
    metrics = [{k: v for k, v in line.items() if k != "step"} for line in read_metrics(folder)]
    recorder = RunRecorder(folder, tracker, info=info)
    recorder.restore(metrics, [])  # sends the steps the run lacks
    recorder.finish(info.get("status", "FINISHED"))
    if recorder.offline:
        raise RuntimeError(f"upload to {uri} failed again; the folder is unchanged")
    return tracker.run_id


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    parser = argparse.ArgumentParser(prog="cl-sync", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a run's output folder (has run_info.json)")
    parser.add_argument("--tracking-uri", help="upload here instead of the run's own URI")
    args = parser.parse_args(argv)
    from cl_runner.errors import UserError

    try:
        run_id = sync_folder(args.folder, args.tracking_uri)
    except (UserError, FileNotFoundError, RuntimeError) as err:
        print(f"cl-sync: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"synced {args.folder} -> run {run_id}")


if __name__ == "__main__":
    main()
