"""Readable run names and flat parameter keys for MLflow.

A name is built from what the components declare: the method's ``short_name``, the
buffer's ``name_parts``, the selection's ``name_part``, the memory size and the seed, e.g.
``parametric-class-m200-s0`` (replay), ``derpp-reservoir-m500-s1``, ``naive-s0``; online runs
start with ``online-`` (the protocol's ``name_part``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig


def run_name(cfg: DictConfig) -> str:
    """``name`` if set, else the name the components declare."""
    from cl_runner.config.targets import node_args, resolve_target

    if cfg.get("name"):
        return str(cfg.name)
    strategy = resolve_target("strategy", cfg.strategy)
    buffer = resolve_target("buffer", cfg.buffer)
    protocol = resolve_target("protocol", cfg.protocol) if "protocol" in cfg else None
    parts = [getattr(protocol, "name_part", ""), strategy.short_name]
    if buffer is not None:
        args = node_args(cfg.buffer)
        parts += buffer.name_parts(args)
        selection = resolve_target("selection", cfg.selection) if buffer.takes_selection else None
        parts.append(getattr(selection, "name_part", None))
        parts.append(f"m{args['max_size']}")
    elif strategy.takes_memory:
        parts.append("none")
    parts.append(f"s{cfg.seed}")
    return "-".join(p for p in parts if p)


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
