"""Asking a config group's ``_target_`` about its settings, without building it.

The class (or constructor function) a ``_target_`` names is the one source of truth for its
settings: its signature says which keys exist, its ``check_args`` which values it accepts.
Components of this package import torch lazily, so this reads them before torch is loaded.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cl_runner.checks import SettingError

HYDRA_KEYS = ("_target_", "_partial_", "_args_", "_convert_", "_recursive_")


def node_args(node: DictConfig) -> dict[str, Any]:
    """A group node's settings as plain values, without Hydra's reserved keys."""
    tree = OmegaConf.to_container(node, resolve=True)
    return {k: v for k, v in tree.items() if k not in HYDRA_KEYS}


def resolve_target(group: str, node: DictConfig) -> Any | None:
    """The object ``node._target_`` names (None when the group is switched off)."""
    from hydra.utils import get_object

    target = node.get("_target_")
    if target is None:
        return None
    try:
        return get_object(str(target))
    except Exception:
        raise SettingError(f"{group}._target_", target,
                           "an importable class or function (package.module.Name)") from None


def unknown_key(group: str, key: str, value: Any, known: Iterable[str], owner: str) -> SettingError:
    """The error for a key ``owner`` does not have, closest known keys first."""
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=len(known), cutoff=0.0)
    return SettingError(f"{group}.{key}" if group else key, value,
                        f"not a setting of {owner} (its settings: {', '.join(close) or 'none'})")


def parameters(target: Callable[..., Any]) -> list[str] | None:
    """Keyword-capable parameter names of ``target``; None when it takes ``**kwargs``."""
    params = inspect.signature(target).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_target_args(group: str, target: Any, args: Mapping[str, Any]) -> None:
    """Refuse keys ``target`` does not take, then run its ``check_args`` on the values."""
    names = parameters(target)
    owner = getattr(target, "__name__", str(target))
    if names is not None:
        for key, value in args.items():
            if key not in names:
                raise unknown_key(group, key, value, names, owner)
    check = getattr(target, "check_args", None)
    if check is not None:
        try:
            check(**args)
        except SettingError as err:
            raise err.within(group) from None


def check_schema(group: str, node: DictConfig) -> Any | None:
    """For a node typed by a structured config: refuse keys the schema lacks (``+key=``
    bypasses Hydra's own check) and build the dataclass, which applies its rules."""
    schema = OmegaConf.get_type(node)
    if schema is None or not is_dataclass(schema):
        return None
    declared = {f.name for f in fields(schema)}
    for key in node:
        if key not in declared:
            raise unknown_key(group, str(key), node[key],
                              (n for n in declared if not n.startswith("_")), schema.__name__)
    try:
        return OmegaConf.to_object(node)
    except SettingError as err:
        raise err.within(group) from None
