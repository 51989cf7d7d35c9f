"""Validation of user settings after composition, before any data or MLflow run is touched.

Every rule reports one line: the setting, the bad value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig


class ConfigError(ValueError):
    """A user setting that cannot work; the message is the one line shown to the user."""

    def __init__(self, setting: str, value: Any, allowed: str) -> None:
        super().__init__(f"{setting}={value!r} is not allowed: {allowed}")
        self.setting, self.value, self.allowed = setting, value, allowed


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check(cfg: DictConfig, key: str, ok: Callable[[Any], bool], allowed: str) -> None:
    """Check ``cfg[key]`` (dotted) if present."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return
        node = node[part]
    if not ok(node):
        raise ConfigError(key, node, allowed)


def _positive_int(v: Any) -> bool:
    return _is_int(v) and v > 0


def _optional_positive_int(v: Any) -> bool:
    return v is None or _positive_int(v)


def _check_target(cfg: DictConfig, group: str) -> None:
    from hydra.utils import get_object

    target = cfg[group].get("_target_") if group in cfg else None
    if not target:
        return
    try:
        get_object(str(target))
    except Exception:
        raise ConfigError(f"{group}._target_", target, "an importable class or function") from None


GROUPBY = (None, "class", "task", "experience")


def _check_buffer(cfg: DictConfig) -> None:
    buffer = cfg.buffer
    if not buffer.get("_target_"):
        return
    _check(cfg, "buffer.max_size", _positive_int, "a positive integer (buffer=none for no replay)")
    if "groupby" in buffer and buffer.groupby not in GROUPBY:
        raise ConfigError("buffer.groupby", buffer.groupby, "null, class, task or experience")
    selection = str(cfg.selection.get("_target_", ""))
    uses_selection = "groupby" in buffer
    if not uses_selection and not selection.endswith("RandomExemplarsSelectionStrategy"):
        raise ConfigError(
            "selection", selection.rsplit(".", 1)[-1],
            f"{str(buffer._target_).rsplit('.', 1)[-1]} samples at random; "
            "selection=herding/closest_to_center needs buffer=parametric",
        )


def _check_device(cfg: DictConfig) -> None:
    device = str(cfg.device)
    if device == "cpu":
        return
    if not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ConfigError("device", device, "cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("device", device, "cpu (no CUDA GPU is available on this machine)")


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first setting that cannot work."""
    _check(cfg, "seed", _is_int, "an integer")
    for group in ("benchmark", "model", "optimizer", "strategy", "buffer", "selection",
                  "dataloader"):
        _check_target(cfg, group)
    _check(cfg, "benchmark.n_experiences", _positive_int, "a positive integer")
    _check(cfg, "strategy.train_mb_size", _positive_int, "a positive integer")
    _check(cfg, "strategy.eval_mb_size", _positive_int, "a positive integer")
    _check(cfg, "strategy.train_epochs", lambda v: _is_int(v) and v >= 0,
           "a non-negative integer")
    _check(cfg, "optimizer.lr", lambda v: _is_number(v) and v > 0, "a positive number")
    _check(cfg, "dataloader.batch_size", _optional_positive_int, "null or a positive integer")
    _check(cfg, "dataloader.batch_size_mem", _optional_positive_int, "null or a positive integer")
    _check_buffer(cfg)
    _check_device(cfg)
