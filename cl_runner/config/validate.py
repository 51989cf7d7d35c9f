"""Validation of a composed config, before any data, torch or MLflow run is touched.

Every rule reports one line: the setting, the bad value and what is allowed. The rules come
from their owners: the run-wide schema (``config.schema``), the model and optimizer schemas,
and for every other group the class its ``_target_`` names (``check_args`` for its own
arguments, ``check_stream`` against what the benchmark declares, ``check_buffer`` for a
method's memory). Nothing here names a component class.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from cl_runner.benchmarks.info import StreamInfo
from cl_runner.checks import SettingError, field_rule
from cl_runner.config.schema import GROUP_NODES, RunSettings, check_writable_folder
from cl_runner.config.targets import (
    check_schema,
    check_target_args,
    node_args,
    resolve_target,
    unknown_key,
)

BYTES_PER_PARAMETER = 4  # float32


@dataclass
class Component:
    """A group's target and settings, as validated."""

    target: Any
    args: dict[str, Any]
    settings: Any = None


def check_group(group: str, node: DictConfig) -> Component:
    """Check a group node against its schema, or against the class its ``_target_`` names.

    A schema's own ``_target_`` (a torch class) is not imported: the schema describes it.
    """
    settings = check_schema(group, node)
    args = node_args(node)
    if settings is not None and node.get("_target_") == type(settings)._target_:
        return Component(None, args, settings)
    target = resolve_target(group, node)
    if settings is None and target is not None:
        check_target_args(group, target, args)
    return Component(target, args, settings)


def _within(group: str, check: Any, *args: Any) -> None:
    try:
        check(*args)
    except SettingError as err:
        raise err.within(group) from None


def check_root(cfg: DictConfig) -> None:
    """Top-level keys: no unknown ones (``+key=`` adds any), and each run-wide rule."""
    known = set(RunSettings.__dataclass_fields__) | {"hydra"}
    for key in cfg:
        if key not in known:
            raise unknown_key("", str(key), cfg[key], known - {"hydra"}, "cl-run")
    for name in ("seed", "device", "name", "resume"):
        rule = field_rule(RunSettings, name)
        rule(name, cfg[name])


def check_benchmark(cfg: DictConfig) -> StreamInfo:
    bench = check_group("benchmark", cfg.benchmark)
    if bench.target is None:
        raise SettingError("benchmark._target_", None, "a benchmark constructor")
    info = getattr(bench.target, "info", None)
    if info is None:
        raise SettingError("benchmark._target_", cfg.benchmark._target_,
                           "a benchmark constructor that declares info() (see "
                           "cl_runner.benchmarks.base.declared)")
    return info(**bench.args)


def check_selection(cfg: DictConfig, buffer: Component, model: Component) -> None:
    selection = check_group("selection", cfg.selection)
    name_part = getattr(selection.target, "name_part", None)
    if not getattr(buffer.target, "takes_selection", False):
        if name_part is not None:
            kind = getattr(buffer.target, "short_name", "none")
            raise SettingError("selection", name_part,
                               f"random with buffer={kind}: it ranks no exemplars "
                               "(a selection strategy needs buffer=parametric)")
        return
    layer = selection.args.get("layer_name")
    layers = model.settings.layer_names() if model.settings is not None else None
    if layer is not None and layers is not None and layer not in layers:
        raise SettingError("selection.layer_name", layer,
                           f"a layer of the model: {', '.join(layers)}")


def check_strategy(
    cfg: DictConfig, buffer: Component, info: StreamInfo, overrides: Sequence[str]
) -> None:
    strategy = check_group("strategy", cfg.strategy)
    cls = strategy.target
    if cls is None or not hasattr(cls, "from_run"):
        raise SettingError("strategy._target_", cfg.strategy.get("_target_"),
                           "a strategy class (a SupervisedTemplate subclass)")
    cls.check_buffer(buffer.target, buffer.args)
    _within("strategy", cls.check_stream, strategy.args, info)
    chose_loader = any(o.lstrip("+~").startswith("dataloader") for o in overrides)
    if chose_loader and not cls.uses_dataloader:
        raise SettingError("dataloader", cfg.dataloader.get("_target_"),
                           f"left unset with strategy={cls.short_name}: it forms its own "
                           "batches (the dataloader group is strategy=replay's)")


def check_protocol(cfg: DictConfig, buffer: Component) -> None:
    """The protocol's own settings, then what it needs of the strategy and the buffer."""
    protocol = check_group("protocol", cfg.protocol)
    check_run = getattr(protocol.target, "check_run", None)
    if protocol.target is None or check_run is None:
        raise SettingError("protocol._target_", cfg.protocol.get("_target_"),
                           "a protocol class (cl_runner.protocols)")
    check_run(protocol.args, node_args(cfg.strategy), buffer.target, buffer.args)


def cuda_device_count() -> int:
    """GPUs the NVIDIA driver exposes (and CUDA_VISIBLE_DEVICES lets through), without torch."""
    gpus = Path("/proc/driver/nvidia/gpus")
    count = len(list(gpus.iterdir())) if gpus.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = min(count, len([v for v in visible.split(",") if v.strip()]))
    return count


def check_device(device: str) -> None:
    if device == "cpu":
        return
    count = cuda_device_count()
    if count == 0:
        raise SettingError("device", device, "cpu (no CUDA GPU is available on this machine)")
    index = int(device[5:]) if ":" in device else 0
    if index >= count:
        raise SettingError("device", device, f"cuda:0..cuda:{count - 1}")


def available_memory() -> int | None:
    """Bytes the kernel says can be allocated without swapping (Linux), else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_memory(model: Component, optimizer: Component, info: StreamInfo, device: str) -> None:
    """Refuse a model whose parameters, gradients and optimizer state cannot fit."""
    if model.settings is None or device != "cpu":
        return
    available = available_memory()
    state = optimizer.settings.state_per_parameter() if optimizer.settings is not None else 2
    n_params = model.settings.n_parameters(info)
    need = n_params * BYTES_PER_PARAMETER * (2 + state)
    if available is not None and need > available:
        sizes = ", ".join(f"{k}={v}" for k, v in model.args.items() if v is not None)
        raise SettingError("model", sizes,
                           f"a model that fits in memory: {n_params:.3g} parameters need "
                           f"{need / 2**30:.1f} GiB with gradients and optimizer state; "
                           f"{available / 2**30:.1f} GiB is available")


def validate(cfg: DictConfig, overrides: Sequence[str] = ()) -> StreamInfo:
    """Raise ``SettingError`` for the first setting that cannot work; return what the
    benchmark declares. ``overrides`` are the command line's (to tell chosen from default)."""
    check_root(cfg)
    check_schema("tracking", cfg.tracking)
    paths = check_schema("paths", cfg.paths)
    check_writable_folder("paths.output_root", paths.output_root)
    for group in GROUP_NODES:
        if group not in cfg:
            raise SettingError(group, None, f"a {group} option (cl-run --help lists them)")
    info = check_benchmark(cfg)
    model = check_group("model", cfg.model)
    if model.settings is not None:
        _within("model", model.settings.check_stream, info)
    optimizer = check_group("optimizer", cfg.optimizer)
    buffer = check_group("buffer", cfg.buffer)
    if buffer.target is not None:
        _within("buffer", buffer.target.check_stream, buffer.args, info)
    check_selection(cfg, buffer, model)
    check_group("dataloader", cfg.dataloader)
    check_protocol(cfg, buffer)  # first: protocol=online sets some strategy sizes
    check_strategy(cfg, buffer, info, overrides)
    check_device(cfg.device)
    check_memory(model, optimizer, info, cfg.device)
    return info
