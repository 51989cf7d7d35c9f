"""Structured configs (Hydra's ConfigStore) of the run-wide settings, and their registration.

``RunSettings`` is the schema of ``conf/config.yaml``: the types and rules of the top-level
keys, ``tracking`` and ``paths``. The settings of torch's optimizers and of our networks are
schemas too (``cl_runner.optimizers``, ``cl_runner.models.settings``); every other group is
checked by the class its ``_target_`` names (``check_args``), so a new buffer or method adds
no schema here.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from cl_runner.checks import BOOL, SEED, Rule, SettingError, Settings, setting
from cl_runner.models.settings import SCHEMAS as MODEL_SCHEMAS
from cl_runner.optimizers import SCHEMAS as OPTIMIZER_SCHEMAS

# Schemes MLflow's tracking client accepts (databases through SQLAlchemy, servers over HTTP).
TRACKING_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")
EXPERIMENT_NAME_MAX = 256  # MLflow's column width for experiment names


def _device_ok(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    return value in ("cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit())


def _uri_ok(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, str) or not value:
        return False
    parsed = urlparse(value)
    scheme = parsed.scheme.split("+")[0]
    if scheme not in TRACKING_SCHEMES:
        return False
    if scheme == "sqlite":
        return value.startswith("sqlite:///") and len(value) > len("sqlite:///")
    return scheme == "databricks" or bool(parsed.netloc)


DEVICE = Rule(_device_ok, "cpu, cuda or cuda:N")
NAME = Rule(lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
            "null (a name built from the settings) or a non-empty name")
RESUME = Rule(lambda v: isinstance(v, bool) or (isinstance(v, str) and v.strip() != ""),
              "false, true or the path of a run folder")
EXPERIMENT_NAME = Rule(
    lambda v: isinstance(v, str) and v.strip() != "" and len(v) <= EXPERIMENT_NAME_MAX,
    f"a non-empty name of at most {EXPERIMENT_NAME_MAX} characters",
)
TRACKING_URI = Rule(
    _uri_ok,
    "null ($MLFLOW_TRACKING_URI or the local store), sqlite:///PATH, http(s)://HOST:PORT or a "
    "database URI (postgresql://, mysql://, mssql://)",
)
FOLDER = Rule(lambda v: isinstance(v, str) and v.strip() != "",
              "a folder path (an empty value, e.g. from an environment variable set to '', "
              "would write to the filesystem root)")


@dataclass
class TrackingSettings(Settings):
    """Where runs are recorded: ``tracking_uri`` null means ``$MLFLOW_TRACKING_URI`` or the
    sqlite store under ``paths.output_root``."""

    enabled: bool = setting(True, BOOL)
    tracking_uri: Optional[str] = setting(None, TRACKING_URI)  # noqa: UP045 - OmegaConf
    experiment_name: str = setting("cl_runner", EXPERIMENT_NAME)


@dataclass
class PathsSettings(Settings):
    """Every filesystem location; relative paths are relative to where cl-run starts."""

    output_root: str = setting("outputs", FOLDER)
    data_root: str = setting("data", FOLDER)


@dataclass
class RunSettings:
    """The composed config: one node per config group, then the run-wide keys."""

    benchmark: Any = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING
    strategy: Any = MISSING
    buffer: Any = MISSING
    selection: Any = MISSING
    dataloader: Any = MISSING
    protocol: Any = MISSING
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    paths: PathsSettings = field(default_factory=PathsSettings)
    seed: int = setting(0, SEED)
    device: str = setting("cpu", DEVICE)
    name: Optional[str] = setting(None, NAME)  # noqa: UP045
    resume: Any = setting(False, RESUME)
    resume_allow_changes: list[str] = field(default_factory=list)
    charts: bool = setting(True, BOOL)


GROUP_NODES = ("benchmark", "model", "optimizer", "strategy", "buffer", "selection",
               "dataloader", "protocol")
RUN_TOKEN = secrets.token_hex(3)


def absolute(path: str | Path, base: str | Path | None = None) -> Path:
    """``path`` made absolute against ``base`` (default: the current directory)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path(base or os.getcwd()) / path


def with_absolute_paths(cfg: DictConfig, base: str | Path | None) -> DictConfig:
    """A copy whose ``paths`` (and a relative sqlite URI) are absolute against ``base``: a job
    that changes directory (``hydra.job.chdir=true``) still writes where it was asked to."""
    cfg = cfg.copy()
    cfg.paths.output_root = str(absolute(cfg.paths.output_root, base))
    cfg.paths.data_root = str(absolute(cfg.paths.data_root, base))
    uri = cfg.tracking.tracking_uri
    if uri and uri.startswith("sqlite:///"):
        cfg.tracking.tracking_uri = f"sqlite:///{absolute(uri.removeprefix('sqlite:///'), base)}"
    return cfg


def check_writable_folder(name: str, path: str | Path) -> None:
    """Refuse a folder that cannot be created or written, leaving nothing behind: a
    temporary folder is made (and removed) in its nearest existing ancestor."""
    probe = absolute(path)
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise SettingError(name, str(path), f"a folder path ({probe} is a file)")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".cl_run_probe_", dir=probe))
    except OSError as err:
        raise SettingError(name, str(path),
                           f"a folder that can be created ({probe}: {err.strerror})") from None


def register() -> None:
    """Put the schemas in Hydra's ConfigStore and the ``run_token`` resolver in OmegaConf.

    ``${run_token:}`` is one random token per process: run folders of jobs that start in the
    same second differ by it. It is cached per config, and Hydra copies a sweep's cache into
    every job's config, so all jobs of one sweep share one sweep folder.
    """
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunSettings)
    for name, schema in MODEL_SCHEMAS.items():
        store.store(group="schema/model", name=name, node=schema)
    for name, schema in OPTIMIZER_SCHEMAS.items():
        store.store(group="schema/optimizer", name=name, node=schema)
    if not OmegaConf.has_resolver("run_token"):
        OmegaConf.register_new_resolver("run_token", lambda: RUN_TOKEN, use_cache=True)
