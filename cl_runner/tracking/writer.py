"""The background writer: uploads a run folder to MLflow while the run trains.

``import mlflow``, opening its store and every upload stay off the training path (the way
W&B's service process does it): the run only appends lines to its folder, and the writer,
a child process by default (it imports MLflow on the other core while the run imports torch),
sends them every ``POLL_S`` seconds. Signals reach the training process only, so Ctrl-C
never lands inside an MLflow call. ``finish(status)`` sends the rest and ends the run; if the
training process dies without calling it, the writer still sends what the folder holds and
ends the run KILLED.

Run as ``python -m cl_runner.tracking.writer FOLDER``: commands come on stdin, one per line
(``finish STATUS``); end of input without one means the run died.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

POLL_S = 0.5
UPLOAD_LOCK = ".upload.lock"  # held while a writer uploads the folder
KILLED = "KILLED"


def serve(folder: Path, commands: TextIO) -> None:
    """Upload ``folder`` until a ``finish STATUS`` command or the end of ``commands``."""
    from filelock import FileLock

    from cl_runner.tracking.uploader import FolderUploader

    with FileLock(str(folder / UPLOAD_LOCK)):
        uploader = FolderUploader(folder, warn=_warn)
        uploader.open()
        status = KILLED
        while True:
            ready, _, _ = select.select([commands], [], [], POLL_S)
            if ready:
                line = commands.readline()
                if not line:
                    break
                if line.startswith("finish "):
                    status = line.split()[1]
                    break
            uploader.sync()
        uploader.finish(status)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


class BackgroundWriter:
    """Handle on the writer of one run folder: a child process, or a thread in this process.

    Threads suit library use and tests (MLflow is imported once per process); the child
    process suits ``cl-run`` (its imports overlap with the run's own).
    """

    def __init__(self, folder: str | Path, mode: str = "process") -> None:
        self.folder = Path(folder)
        if mode == "process":
            self._proc: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-m", "cl_runner.tracking.writer", str(self.folder)],
                stdin=subprocess.PIPE, text=True, start_new_session=True,
            )
            self._pipe: TextIO = self._proc.stdin
            self._thread = None
        else:
            read_end, write_end = os.pipe()
            self._proc = None
            self._pipe = os.fdopen(write_end, "w")
            self._thread = threading.Thread(
                target=serve, args=(self.folder, os.fdopen(read_end)), daemon=True,
                name="mlflow-writer",
            )
            self._thread.start()

    def finish(self, status: str, timeout: float = 600) -> bool:
        """Tell the writer the run ended with ``status``; wait until it has uploaded.

        Returns whether it finished within ``timeout`` seconds.
        """
        try:
            self._pipe.write(f"finish {status}\n")
            self._pipe.close()
        except (BrokenPipeError, ValueError):
            pass  # the writer is gone already
        deadline = time.monotonic() + timeout
        if self._proc is not None:
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()


def main() -> None:
    """Entry point of the writer process: signals are the training process's business.

    The run waits for this process to exit, so once everything is uploaded it leaves at once:
    the interpreter's teardown of MLflow's imports (SQLAlchemy, pandas, ...) took ~0.3 s of
    that wait, and nothing is left to flush (every MLflow call returned, the lock is released).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(Path(sys.argv[1]), sys.stdin)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
