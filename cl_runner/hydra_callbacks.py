"""Hydra callbacks: set the tracking store up once, in the parent, before sweep jobs start."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class PrepareTracking(Callback):
    """Create the MLflow store and experiment before a multirun launches its jobs.

    Parallel jobs racing to create a fresh sqlite schema fail, and racing to create a new
    experiment file some runs under ``Default``; doing it here first removes both races.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from cl_runner.config import ConfigError, validate

        try:
            validate(config)
        except ConfigError:
            return  # each job reports the mistake itself, with exit code 2
        if not config.tracking.enabled:
            return
        from cl_runner.errors import TrackingUnavailableError
        from cl_runner.tracking.store import (
            check_server,
            limit_http_retries,
            prepare_experiment,
            resolve_tracking_uri,
        )

        uri = resolve_tracking_uri(config.tracking.tracking_uri, config.paths.output_root)
        try:
            check_server(uri)
        except TrackingUnavailableError:
            return  # each job reports the unreachable server itself
        limit_http_retries()
        prepare_experiment(uri, config.tracking.experiment_name)
