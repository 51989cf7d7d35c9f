"""MLflow tracking: store and experiment setup, and the per-run writer."""

from cl_runner.tracking.run_logger import MLflowRunLogger
from cl_runner.tracking.store import prepare_experiment, resolve_tracking_uri

__all__ = ["MLflowRunLogger", "prepare_experiment", "resolve_tracking_uri"]
