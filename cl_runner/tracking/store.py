"""Where runs are tracked: the tracking URI, the store and the experiment, set up safely.

A local sqlite store is created under a file lock, in a temporary file that is renamed into
place once it is complete (a copy of an empty store MLflow made once per machine, or MLflow's
migrations): a kill at any instant leaves either no store or a
complete one, and processes starting together wait for the first to finish. A store left
half-made by an older version (no runs in it) is moved aside and made anew. The experiment is
created under the same lock, so concurrent jobs never file runs under ``Default``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from cl_runner.errors import TrackingUnavailableError

PROBE_TIMEOUT_S = 5
LOCK_TIMEOUT_S = 300
# MLflow's own defaults retry HTTP for minutes; a run must notice an outage in seconds.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
               "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
REQUIRED_TABLES = ("alembic_version", "experiments", "runs", "metrics", "params", "tags")


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


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def check_server(uri: str, experiment_name: str = "Default") -> None:
    """Fail fast, in one line, when an HTTP tracking server does not answer its API.

    ``/health`` alone is not enough: a proxy or a broken server answers it while its REST
    API hangs or returns errors, so one API call is made too (JSON within the timeout).
    """
    if not is_http(uri):
        return
    base = uri.rstrip("/")
    query = urllib.parse.urlencode({"experiment_name": experiment_name})
    for path in ("/health", f"/api/2.0/mlflow/experiments/get-by-name?{query}"):
        problem = _probe(base + path)
        if problem:
            raise TrackingUnavailableError(
                f"tracking.tracking_uri={uri}: the MLflow server does not work ({problem}); "
                "start it or fix the URI"
            )


def _probe(url: str) -> str | None:
    """Why ``url`` is not a working MLflow endpoint, or None."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as reply:
            body = reply.read(1 << 16)
    except urllib.error.HTTPError as err:
        if err.code != 404 or "/api/" not in url:  # 404: no such experiment yet, still JSON
            return f"HTTP {err.code} from {url}"
        body = err.read(1 << 16)
    except (urllib.error.URLError, OSError) as err:
        return f"{getattr(err, 'reason', err)} at {url}"
    if "/api/" in url:
        try:
            json.loads(body)
        except ValueError:
            return f"{url} answered something other than JSON"
    return None


def is_local_sqlite(uri: str) -> bool:
    return uri.startswith("sqlite:///")


def sqlite_path(uri: str) -> Path:
    return Path(uri.removeprefix("sqlite:///"))


def default_artifact_root(uri: str) -> str | None:
    """Artifacts of a local sqlite store live beside it; servers choose their own."""
    if not is_local_sqlite(uri):
        return None
    return (sqlite_path(uri).parent / "mlartifacts").as_uri()


def store_problem(db: Path) -> str | None:
    """Why the sqlite file ``db`` is not a complete MLflow store, or None."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            tables = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            leftovers = sorted(t for t in tables if t.startswith("_alembic_tmp"))
            missing = [t for t in REQUIRED_TABLES if t not in tables]
            if missing:
                return f"tables {missing} are missing"
            if leftovers:
                return f"an interrupted schema migration left {leftovers}"
            if conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] != 1:
                return "its schema version is not recorded"
    except sqlite3.Error as err:
        return f"sqlite cannot read it ({err})"
    return None


def _run_count(db: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return 0


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Exclusive access to a local sqlite store's setup (no-op for other stores)."""
    if not is_local_sqlite(uri):
        yield
        return
    from filelock import FileLock, Timeout

    db = sqlite_path(uri)
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(db) + ".lock", timeout=LOCK_TIMEOUT_S):
            yield
    except Timeout:
        raise TrackingUnavailableError(
            f"another process has held {db}.lock for {LOCK_TIMEOUT_S} s"
        ) from None


def _create_store(path: Path) -> None:
    """A new empty store at ``path``, made by MLflow's own schema migrations (~1 s)."""
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments(max_results=1)


def empty_store_template() -> Path | None:
    """An empty, complete store for this MLflow version, made once per machine (in the user's
    cache folder) so that a new store is a file copy instead of a second of migrations; None
    when the cache folder cannot be written."""
    import mlflow
    from filelock import FileLock

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cl_runner"
    template = cache / f"mlflow-{mlflow.__version__}-empty-store.db"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with FileLock(str(template) + ".lock", timeout=LOCK_TIMEOUT_S):
            if not template.exists() or store_problem(template) is not None:
                for stale in cache.glob(f".{template.name}.*.creating*"):
                    stale.unlink(missing_ok=True)  # a creation killed earlier
                tmp = template.with_name(f".{template.name}.{os.getpid()}.creating")
                _create_store(tmp)
                os.replace(tmp, template)
    except OSError:
        return None
    return template


def _point_default_experiment_at(db: Path) -> None:
    """A copied store's ``Default`` experiment keeps its artifacts beside the store too."""
    root = f"{(db.parent / 'mlartifacts').as_uri()}/0"
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                     (root,))


def ensure_sqlite_store(uri: str) -> None:
    """Create the local store atomically if it is absent; repair a half-made empty one.

    Call under ``store_lock(uri)``.
    """
    db = sqlite_path(uri)
    if db.exists():
        problem = store_problem(db)
        if problem is None:
            return
        if _run_count(db):
            raise TrackingUnavailableError(
                f"the MLflow store {db} is damaged ({problem}) and holds runs: move it away "
                "or repair it with 'mlflow db upgrade'"
            )
        db.rename(db.with_name(f"{db.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}"))
    for stale in db.parent.glob(f".{db.name}.*.creating*"):
        stale.unlink(missing_ok=True)  # a creation killed earlier (we hold the lock)
    tmp = db.with_name(f".{db.name}.{os.getpid()}.creating")
    template = empty_store_template()
    if template is None:
        _create_store(tmp)
    else:
        shutil.copyfile(template, tmp)
        _point_default_experiment_at(tmp)
    os.replace(tmp, db)


def prepare_experiment(uri: str, name: str) -> str:
    """Create the store (schema) and the experiment if needed; return the experiment id.

    For a local store both happen under the store's lock; against a server a lost creation
    race is answered by reading the experiment the other process created.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    with store_lock(uri):
        if is_local_sqlite(uri):
            ensure_sqlite_store(uri)
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
