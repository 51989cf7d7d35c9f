"""Errors shown as one line, never as a traceback: the user's to fix (exit code 2) or a run
that failed for a reason worth one line (exit code 1)."""

from __future__ import annotations


class UserError(Exception):
    """Base of every error `cl-run` reports as one line with exit code 2."""


class TrackingUnavailableError(UserError):
    """The MLflow tracking store cannot be used when the run starts."""


class ResumeError(UserError):
    """``resume`` names no usable run, or a run that cannot be continued as asked."""


class RunFailure(RuntimeError):
    """A run that cannot go on (reported in one line, exit code 1, MLflow status FAILED)."""


class NonFiniteLossError(RunFailure):
    """Training diverged; the message names the experience and iteration."""


class OutputWriteError(RunFailure):
    """A file of the run folder could not be written (a full disk, a lost mount)."""

    def __init__(self, path: object, err: OSError) -> None:
        super().__init__(f"cannot write {path}: {err.strerror or err}")
