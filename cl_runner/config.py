"""Validation of user settings after composition, before any data or MLflow run is touched.

Every rule reports one line: the setting, the bad value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, ListConfig


class ConfigError(ValueError):
    """A user setting that cannot work; the message is the one line shown to the user."""

    def __init__(self, setting: str, value: Any, allowed: str) -> None:
        super().__init__(f"{setting}={value!r} is not allowed: {allowed}")
        self.setting, self.value, self.allowed = setting, value, allowed


# Classes of each benchmark, known before any data is loaded (for divisibility and groups).
BENCHMARK_CLASSES = {
    "SplitDigits": 10, "SplitMNIST": 10, "SplitFMNIST": 10, "PermutedMNIST": 10,
    "SplitCIFAR10": 10, "SplitCIFAR100": 100,
}
GROUPBY = (None, "class", "task", "experience")
RANDOM_ONLY_BUFFERS = ("ReservoirSamplingBuffer", "ClassBalancedBuffer",
                       "ExperienceBalancedBuffer")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _positive_int(v: Any) -> bool:
    return _is_int(v) and v > 0


def _optional_positive_int(v: Any) -> bool:
    return v is None or _positive_int(v)


def _get(cfg: DictConfig, key: str) -> tuple[bool, Any]:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _check(cfg: DictConfig, key: str, ok: Callable[[Any], bool], allowed: str) -> None:
    """Check ``cfg[key]`` (dotted) if the key exists."""
    present, value = _get(cfg, key)
    if present and not ok(value):
        raise ConfigError(key, value, allowed)


def _short(target: Any) -> str:
    return str(target or "").rsplit(".", 1)[-1]


def _check_target(cfg: DictConfig, group: str) -> None:
    from hydra.utils import get_object

    target = cfg[group].get("_target_") if group in cfg else None
    if not target:
        return
    try:
        get_object(str(target))
    except Exception:
        raise ConfigError(f"{group}._target_", target, "an importable class or function") from None


def _check_benchmark(cfg: DictConfig) -> tuple[int, int]:
    """Validate the split; return (classes, experiences) for the buffer checks."""
    from pathlib import Path

    bench = cfg.benchmark
    n_classes = BENCHMARK_CLASSES.get(_short(bench.get("_target_")), 0)
    _check(cfg, "benchmark.n_experiences", _positive_int, "a positive integer")
    n_exp = int(bench.get("n_experiences", 1))
    permuted = _short(bench.get("_target_")) == "PermutedMNIST"
    order = bench.get("fixed_class_order")
    if order is not None:
        if not isinstance(order, ListConfig) or not all(_is_int(c) for c in order):
            raise ConfigError("benchmark.fixed_class_order", order, "null or a list of class ids")
        order = list(order)
        unknown = [c for c in order if n_classes and not 0 <= c < n_classes]
        if unknown:
            raise ConfigError("benchmark.fixed_class_order", order,
                              f"class ids 0..{n_classes - 1} (unknown: {unknown})")
        if len(set(order)) != len(order):
            raise ConfigError("benchmark.fixed_class_order", order, "each class at most once")
    classes = len(order) if order is not None else n_classes
    if classes and not permuted and (n_exp > classes or classes % n_exp):
        divisors = [d for d in range(1, classes + 1) if classes % d == 0]
        raise ConfigError("benchmark.n_experiences", n_exp,
                          f"a divisor of the {classes} classes: {divisors}")
    root = bench.get("root")
    offline = not bench.get("download", False) and not bench.get("mirror")
    if root and offline and not Path(str(root)).exists():
        raise ConfigError("benchmark.root", str(root),
                              "an existing folder when benchmark.download=false "
                              "(set benchmark.download=true or benchmark.mirror=FOLDER)")
    return n_classes, n_exp


def _groups_to_hold(cfg: DictConfig, n_classes: int, n_exp: int) -> tuple[int, str]:
    """How many groups the buffer must hold at the end of the stream, and what they are."""
    kind = _short(cfg.buffer.get("_target_"))
    if kind == "ClassBalancedBuffer":
        return n_classes, "classes"
    if kind == "ExperienceBalancedBuffer":
        return n_exp, "experiences"
    if kind == "ParametricBuffer":
        groupby = cfg.buffer.get("groupby")
        return {"class": (n_classes, "classes"), "task": (n_exp, "tasks"),
                "experience": (n_exp, "experiences")}.get(groupby, (1, "group"))
    return 1, "sample"


def _check_buffer(cfg: DictConfig, n_classes: int, n_exp: int) -> None:
    buffer = cfg.buffer
    if not buffer.get("_target_"):
        return
    _check(cfg, "buffer.max_size", _positive_int, "a positive integer (buffer=none for no replay)")
    if "groupby" in buffer and buffer.groupby not in GROUPBY:
        raise ConfigError("buffer.groupby", buffer.groupby, "null, class, task or experience")
    groups, what = _groups_to_hold(cfg, n_classes, n_exp)
    if buffer.max_size < groups:
        raise ConfigError("buffer.max_size", buffer.max_size,
                          f"at least {groups}: one sample for each of the {groups} {what}")
    for flag, total in (("total_num_classes", n_classes), ("num_experiences", n_exp)):
        if flag in buffer and not buffer.get("adaptive_size", True):
            _check(cfg, f"buffer.{flag}", lambda v, t=total: _is_int(v) and v >= t,
                   f"an integer >= {total} when buffer.adaptive_size=false")
    selection = _short(cfg.selection.get("_target_"))
    kind = _short(buffer._target_)
    if kind in RANDOM_ONLY_BUFFERS and selection != "RandomExemplarsSelectionStrategy":
        raise ConfigError("selection", selection,
                          f"random with buffer {kind} (herding and closest_to_center need "
                          "buffer=parametric)")


def _check_device(cfg: DictConfig) -> None:
    device = str(cfg.device)
    if device == "cpu":
        return
    if not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ConfigError("device", device, "cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("device", device, "cpu (no CUDA GPU is available on this machine)")
    index = int(device[5:]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ConfigError("device", device, f"cuda:0..cuda:{torch.cuda.device_count() - 1}")


def _check_model_and_training(cfg: DictConfig) -> None:
    for key in ("strategy.train_mb_size", "strategy.eval_mb_size", "model.hidden_size",
                "model.hidden_layers"):
        _check(cfg, key, _positive_int, "a positive integer")
    _check(cfg, "strategy.train_epochs", lambda v: _is_int(v) and v >= 0,
           "a non-negative integer")
    _check(cfg, "model.drop_rate", lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")
    _check(cfg, "optimizer.lr", lambda v: _is_number(v) and v > 0, "a positive number")
    _check(cfg, "optimizer.weight_decay", lambda v: _is_number(v) and v >= 0,
           "a non-negative number")
    _check(cfg, "optimizer.momentum", lambda v: _is_number(v) and 0 <= v < 1,
           "a number in [0, 1)")
    _check(cfg, "dataloader.batch_size", _optional_positive_int, "null or a positive integer")
    _check(cfg, "dataloader.batch_size_mem", _optional_positive_int, "null or a positive integer")


def _check_run(cfg: DictConfig) -> None:
    _check(cfg, "seed", _is_int, "an integer")
    _check(cfg, "tracking.enabled", lambda v: isinstance(v, bool), "true or false")
    _check(cfg, "tracking.experiment_name", lambda v: isinstance(v, str) and v.strip() != "",
           "a non-empty name")
    _check(cfg, "resume", lambda v: isinstance(v, bool) or (isinstance(v, str) and v != ""),
           "false, true or the path of a run folder")


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first setting that cannot work."""
    _check_run(cfg)
    for group in ("benchmark", "model", "optimizer", "strategy", "buffer", "selection",
                  "dataloader"):
        _check_target(cfg, group)
    n_classes, n_exp = _check_benchmark(cfg)
    _check_model_and_training(cfg)
    _check_buffer(cfg, n_classes, n_exp)
    _check_device(cfg)
