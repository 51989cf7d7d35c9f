"""Which run folder a run writes to, and whether it continues an earlier one.

``resume=true`` picks the newest run folder of the same config under ``paths.output_root``;
``resume=PATH`` names one. A resumed run must have the same config (the keys in
``resume_allow_changes`` may differ) and the same tracking store; it continues after the last
checkpoint, or from scratch in the same folder and MLflow run when it was killed before its
first checkpoint. A folder is locked while a run writes it, so two resumes of one run cannot
both proceed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from cl_runner.checkpoint import CHECKPOINT_FILE, load_checkpoint
from cl_runner.errors import ResumeError
from cl_runner.naming import flatten
from cl_runner.recording import CONFIG_FILE, RUN_INFO_FILE

log = logging.getLogger(__name__)

RUN_FOLDERS = ("runs", "multiruns")  # where Hydra puts job folders (conf/config.yaml)
RESUME_KEYS = ("resume", "resume_allow_changes")
RUN_LOCK = ".lock"


def _without(tree: Mapping[str, Any], ignored: Sequence[str]) -> dict[str, Any]:
    flat = flatten(tree)
    return {k: v for k, v in flat.items()
            if not any(k == p or k.startswith(p + ".") for p in ignored)}


def config_key(cfg: DictConfig) -> str:
    """Hash of the resolved config without the resume settings: same command, same key."""
    tree = _without(OmegaConf.to_container(cfg, resolve=True), RESUME_KEYS)
    return hashlib.sha256(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], allowed: Sequence[str] = ()
) -> list[str]:
    """Dotted keys whose values differ between two configs (``old -> new``), minus
    ``allowed`` (and their sub-keys)."""
    ignored = [*RESUME_KEYS, *allowed]
    a, b = _without(old, ignored), _without(new, ignored)
    return [f"{k} ({a.get(k, '<absent>')} -> {b.get(k, '<absent>')})"
            for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


@dataclass
class RunPlan:
    """Where a run writes and what it continues from."""

    folder: Path
    resumed: bool = False
    checkpoint: dict[str, Any] | None = None
    lock: Any = None

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


def _folder_config(folder: Path) -> dict[str, Any] | None:
    try:
        return OmegaConf.to_container(OmegaConf.load(folder / CONFIG_FILE))
    except Exception:  # missing or unreadable: not a run this resume can continue
        return None


def _candidates(root: Path) -> list[Path]:
    """Run folders under ``root`` with a readable ``run_info.json`` (newest first)."""
    found = []
    for sub in RUN_FOLDERS:
        for info_path in (root / sub).glob(f"**/{RUN_INFO_FILE}"):
            try:
                json.loads(info_path.read_text())
            except (OSError, ValueError):
                log.warning("ignoring unreadable %s", info_path)
                continue
            found.append(info_path.parent)
    return sorted(found, key=lambda p: (p / RUN_INFO_FILE).stat().st_mtime, reverse=True)


def find_resume_folder(
    cfg: DictConfig, current: Mapping[str, Any], missing_ok: bool = False
) -> Path | None:
    """``resume=PATH``: that folder. ``resume=true``: the newest run folder under
    ``paths.output_root`` whose config matches (up to ``resume_allow_changes``); None when
    there is none and ``missing_ok`` (a sweep resume starts the jobs that never ran)."""
    allowed = list(cfg.resume_allow_changes)
    if cfg.resume is not True:
        folder = Path(str(cfg.resume)).expanduser()
        if not (folder / RUN_INFO_FILE).is_file():
            raise ResumeError(f"resume={cfg.resume}: no run folder there (it has no "
                              f"{RUN_INFO_FILE})")
        return folder
    root = Path(cfg.paths.output_root)
    for folder in _candidates(root):
        old = _folder_config(folder)
        if old is not None and not config_changes(old, current, allowed):
            return folder
    if missing_ok:
        return None
    raise ResumeError(
        f"resume=true: no run with this exact config under {root} (give resume=PATH_TO_RUN_FOLDER "
        "to pick one, and resume_allow_changes=[KEY,...] for settings you changed)"
    )


def lock_folder(folder: Path) -> Any:
    """Hold the folder's lock for this process; one line if another run holds it."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(folder / RUN_LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ResumeError(f"{folder} is being written by another cl-run process right now "
                          "(a second resume of the same run?)") from None
    return lock


def current_config(cfg: DictConfig) -> dict[str, Any]:
    """The config a run records (and a resume compares), paths made absolute."""
    from cl_runner.config.schema import with_absolute_paths

    cfg = with_absolute_paths(cfg, None)
    if "hydra" in cfg:  # a preflight config: Hydra's own node resolves only inside a job
        with open_dict(cfg):
            del cfg["hydra"]
    return OmegaConf.to_container(cfg, resolve=True)


def check_resume(cfg: DictConfig, missing_ok: bool = False) -> None:
    """Refuse a resume that ``plan_run`` would refuse, before anything is started."""
    current = current_config(cfg)
    folder = find_resume_folder(cfg, current, missing_ok)
    if folder is not None:
        _check_same_config(cfg, folder, current)


def _check_same_config(cfg: DictConfig, folder: Path, current: Mapping[str, Any]) -> None:
    old = _folder_config(folder)
    if old is None:
        raise ResumeError(f"resume={cfg.resume}: {folder / CONFIG_FILE} is missing or unreadable")
    changes = config_changes(old, current, list(cfg.resume_allow_changes))
    if changes:
        raise ResumeError(f"resume={folder}: the config differs from the run's: "
                          f"{'; '.join(changes)} (add the keys to resume_allow_changes=[...] "
                          "to continue anyway)")


def plan_run(
    cfg: DictConfig, output_dir: Path, current: Mapping[str, Any], tracking_uri: str | None,
    missing_ok: bool = False,
) -> RunPlan:
    """The folder this run writes and the checkpoint it continues from (if any).

    With ``missing_ok`` (a sweep resume), a job whose run is not found starts afresh.
    """
    folder = find_resume_folder(cfg, current, missing_ok) if cfg.resume else None
    if folder is None:
        output_dir.mkdir(parents=True, exist_ok=True)
        return RunPlan(output_dir, lock=lock_folder(output_dir))
    _check_same_config(cfg, folder, current)
    info = json.loads((folder / RUN_INFO_FILE).read_text())
    if info.get("tracking_uri") != tracking_uri and "tracking" not in cfg.resume_allow_changes:
        raise ResumeError(f"resume={folder}: the run was tracked at {info.get('tracking_uri')}, "
                          f"this one would be at {tracking_uri} (resume_allow_changes=[tracking] "
                          "to continue it there)")
    lock = lock_folder(folder)
    checkpoint = load_checkpoint(folder) if (folder / CHECKPOINT_FILE).exists() else None
    return RunPlan(folder, resumed=True, checkpoint=checkpoint, lock=lock)
