"""Errors that are the user's to fix: shown as one line, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Base of every error `cl-run` reports as one line (exit code 2)."""


class TrackingUnavailableError(UserError):
    """The MLflow tracking server cannot be reached when the run starts."""


class ResumeError(UserError):
    """``resume`` names no usable checkpoint."""


class NonFiniteLossError(RuntimeError):
    """Training diverged; the message names the experience and iteration."""
