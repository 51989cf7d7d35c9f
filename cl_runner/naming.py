"""Readable run names and flat parameter keys for MLflow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig


def run_name(cfg: DictConfig) -> str:
    """E.g. ``parametric-class-m200-s0``, ``reservoir-m500-s1``, ``none-s0``."""
    if cfg.get("name"):
        return str(cfg.name)
    target = str(cfg.buffer.get("_target_") or "")
    if not target:
        return f"none-s{cfg.seed}"
    kind = {
        "ReservoirSamplingBuffer": "reservoir",
        "ParametricBuffer": "parametric",
        "ClassBalancedBuffer": "class_balanced",
        "ExperienceBalancedBuffer": "experience_balanced",
    }.get(target.rsplit(".", 1)[-1], target.rsplit(".", 1)[-1])
    parts = [kind]
    if "groupby" in cfg.buffer:
        parts.append(str(cfg.buffer.groupby or "none"))
    selection = str(cfg.selection.get("_target_", "")).rsplit(".", 1)[-1]
    if "groupby" in cfg.buffer and selection and selection != "RandomExemplarsSelectionStrategy":
        parts.append(selection.removesuffix("SelectionStrategy").lower())
    parts += [f"m{cfg.buffer.max_size}", f"s{cfg.seed}"]
    return "-".join(parts)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys: ``{"buffer": {"max_size": 5}} -> {"buffer.max_size": 5}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
