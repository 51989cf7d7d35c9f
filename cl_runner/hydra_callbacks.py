"""Hydra callbacks: set the tracking store up once, in the parent, before sweep jobs start."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class PrepareTracking(Callback):
    """Create the MLflow store and experiment before a multirun launches its jobs.

    Jobs would wait on each other for the store's lock otherwise; doing it here first also
    reports an unusable store once, in the parent. Errors are left to the jobs, which report
    them in one line.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.tracking.enabled:
            return
        from cl_runner.errors import UserError
        from cl_runner.tracking.store import (
            check_server,
            limit_http_retries,
            prepare_experiment,
            resolve_tracking_uri,
        )

        uri = resolve_tracking_uri(config.tracking.tracking_uri, config.paths.output_root)
        try:
            check_server(uri, config.tracking.experiment_name)
        except UserError:
            return  # each job reports the unusable server itself
        limit_http_retries()
        prepare_experiment(uri, config.tracking.experiment_name)
