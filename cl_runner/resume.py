"""Finding the run folder a ``resume`` continues, and the key that ties a run to its config."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cl_runner.checkpoint import CHECKPOINT_FILE
from cl_runner.errors import ResumeError
from cl_runner.recording import RUN_INFO_FILE

RUN_FOLDERS = ("runs", "multiruns")  # where Hydra puts job folders (conf/config.yaml)


def config_key(cfg: DictConfig) -> str:
    """Hash of the resolved config without ``resume``: same command, same key."""
    tree = OmegaConf.to_container(cfg, resolve=True)
    tree.pop("resume", None)
    return hashlib.sha256(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()[:16]


def find_resume_folder(cfg: DictConfig) -> Path:
    """``resume=PATH``: that folder. ``resume=true``: the newest checkpointed run of this config
    under ``paths.output_root``."""
    if cfg.resume is not True:
        folder = Path(str(cfg.resume))
        if not (folder / CHECKPOINT_FILE).exists():
            raise ResumeError(f"resume={cfg.resume}: no {CHECKPOINT_FILE} in that folder")
        return folder
    key = config_key(cfg)
    root = Path(cfg.paths.output_root)
    candidates = []
    run_infos = [p for sub in RUN_FOLDERS for p in (root / sub).glob(f"**/{RUN_INFO_FILE}")]
    for info_path in run_infos:
        info = json.loads(info_path.read_text())
        if info.get("config_key") == key and (info_path.parent / CHECKPOINT_FILE).exists():
            candidates.append(info_path.parent)
    if not candidates:
        raise ResumeError(
            f"resume=true: no checkpointed run with this exact config under {root} "
            "(give resume=PATH_TO_RUN_FOLDER to pick one)"
        )
    return max(candidates, key=lambda p: (p / CHECKPOINT_FILE).stat().st_mtime)
