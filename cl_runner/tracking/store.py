"""Where runs are tracked: the tracking URI, the store and the experiment, set up once.

Creating a fresh sqlite store or a new experiment from several processes at once loses or
misfiles runs (see the README's "Sweeps" section), so the multirun parent calls
``prepare_experiment`` before any job starts and every job passes the experiment id
explicitly.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from cl_runner.errors import TrackingUnavailableError

PROBE_TIMEOUT_S = 5
# MLflow's own defaults retry HTTP for minutes; a run must notice an outage in seconds.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
               "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def resolve_tracking_uri(configured: str | None, output_root: str | Path) -> str:
    """Config value, else ``$MLFLOW_TRACKING_URI``, else a sqlite store under ``output_root``."""
    if configured:
        return str(configured)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(output_root).resolve() / 'mlflow.db'}"


def limit_http_retries() -> None:
    """Bound MLflow's HTTP retries (unless the user set them) before it is imported."""
    for key, value in HTTP_LIMITS.items():
        os.environ.setdefault(key, value)


def check_server(uri: str) -> None:
    """Fail fast, in one line, when an HTTP tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT_S).close()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnavailableError(
            f"tracking.tracking_uri={uri}: no MLflow server answers ({reason}); start it, "
            "fix the URI, or run with tracking=none"
        ) from None


def is_local_sqlite(uri: str) -> bool:
    return uri.startswith("sqlite:///")


def default_artifact_root(uri: str) -> str | None:
    """Artifacts of a local sqlite store live beside it; servers choose their own."""
    if not is_local_sqlite(uri):
        return None
    db_path = Path(uri.removeprefix("sqlite:///"))
    return (db_path.parent / "mlartifacts").as_uri()


def prepare_experiment(uri: str, name: str) -> str:
    """Create the store (schema) and the experiment if needed; return the experiment id.

    Safe to call from concurrent processes once the store exists: a lost creation race is
    answered by reading the experiment another process created.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if is_local_sqlite(uri):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    for _ in range(5):
        existing = client.get_experiment_by_name(name)
        if existing is not None:
            return existing.experiment_id
        try:
            return client.create_experiment(name, artifact_location=default_artifact_root(uri))
        except MlflowException as exc:
            if "already exists" not in str(exc).lower() and "unique" not in str(exc).lower():
                raise
    existing = client.get_experiment_by_name(name)
    if existing is None:
        raise RuntimeError(f"could not create or find MLflow experiment {name!r} at {uri}")
    return existing.experiment_id
