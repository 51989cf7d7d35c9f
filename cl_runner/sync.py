"""`cl-sync FOLDER`: upload a run folder to MLflow after the tracking server was away.

The folder holds everything the run measured (``metrics.jsonl``, ``config.yaml``,
``run_info.json``, tables and plots). Steps MLflow already has are not sent again; a run
missing from the server (or a different server, ``--tracking-uri``) is created anew.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cl_runner.recording import read_info


def sync_folder(folder: str | Path, tracking_uri: str | None = None) -> str:
    """Make the MLflow run of ``folder`` complete; return its run id."""
    from filelock import FileLock

    from cl_runner.tracking.store import check_server
    from cl_runner.tracking.uploader import FolderUploader
    from cl_runner.tracking.writer import UPLOAD_LOCK

    folder = Path(folder)
    info = read_info(folder)
    uri = tracking_uri or info.get("tracking_uri")
    if not uri:
        raise ValueError(f"{folder} was run with tracking=none: give --tracking-uri")
    check_server(uri, info.get("experiment_name", "Default"))
    with FileLock(str(folder / UPLOAD_LOCK), timeout=60):
        uploader = FolderUploader(folder, uri=uri, warn=lambda message: None)
        uploader.open()
        uploader.finish(info.get("status", "FINISHED"))
    if uploader.offline or uploader.run_id is None:
        raise RuntimeError(f"upload to {uri} failed again; the folder is unchanged")
    return uploader.run_id


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    parser = argparse.ArgumentParser(prog="cl-sync", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a run's output folder (has run_info.json)")
    parser.add_argument("--tracking-uri", help="upload here instead of the run's own URI")
    args = parser.parse_args(argv)
    from cl_runner.errors import UserError

    try:
        run_id = sync_folder(args.folder, args.tracking_uri)
    except (UserError, OSError, ValueError, RuntimeError) as err:
        print(f"cl-sync: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"synced {args.folder} -> run {run_id}")


if __name__ == "__main__":
    main()
