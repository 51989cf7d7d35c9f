"""Build a run's objects from the composed config (``run.py`` drives them).

One group after another is instantiated with Hydra (a log line each, as in the
Lightning-Hydra template): benchmark, model, optimizer, buffer (with its selection strategy
when it takes one), the dataloader group's replay plugin, and the strategy, which builds
itself from those parts (``from_run``). Nothing here knows a buffer or method by name.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from cl_runner.benchmarks.base import Benchmark
from cl_runner.benchmarks.info import StreamInfo
from cl_runner.config.targets import node_args
from cl_runner.evaluation.collectors import ExperienceStats
from cl_runner.evaluation.plugin import EvaluationPlugin
from cl_runner.training.strategy import RunComponents, SupervisedTemplate

log = logging.getLogger(__name__)

# metric name of a buffer's groups, by what the buffer says they are; class groups are not
# logged apart: they are the per-class counts already
GROUP_METRIC = {"task": "task", "experience": "experience", "all": "group"}


@dataclass
class Components:
    """What a run trains and evaluates with, built once from the config."""

    benchmark: Benchmark
    strategy: SupervisedTemplate
    buffer: Any | None
    buffer_args: dict[str, Any]
    stats: ExperienceStats


def seed_everything(seed: int) -> None:
    """Seed every RNG a run draws from (torch, numpy, python)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _model_args(model_cfg: DictConfig, info: StreamInfo) -> dict[str, Any]:
    """Fill the model settings left null from the benchmark's shape."""
    derived = {"num_classes": info.n_classes, "input_size": info.input_size,
               "in_channels": info.input_shape[0], "n_tasks": info.n_experiences}
    return {k: v for k, v in derived.items() if k in model_cfg and model_cfg[k] is None}


def _instantiate_logged(group: str, cfg: DictConfig, **kwargs: Any) -> Any:
    log.info("Instantiating %s <%s>", group, cfg.get("_target_"))
    return instantiate(cfg, **kwargs)


def _build_buffer(cfg: DictConfig, model: torch.nn.Module) -> Any | None:
    if not cfg.buffer.get("_target_"):
        return None
    kwargs = {}
    if get_class(cfg.buffer._target_).takes_selection:
        selection = _instantiate_logged("selection", cfg.selection)
        kwargs["selection_strategy"] = selection(model=model) if cfg.selection.get(
            "_partial_") else selection
    return _instantiate_logged("buffer", cfg.buffer, **kwargs)


def build(cfg: DictConfig, plugins: list[Any] | None = None) -> Components:
    """Instantiate every group; ``plugins`` are the runner's own (progress, guards)."""
    seed_everything(int(cfg.seed))
    device = torch.device(cfg.device)
    benchmark = _instantiate_logged("benchmark", cfg.benchmark)
    if device.type != "cpu":
        benchmark.to(device)
    info = benchmark.info
    model = _instantiate_logged("model", cfg.model, **_model_args(cfg.model, info))
    model.to(device)
    optimizer = _instantiate_logged("optimizer", cfg.optimizer, _convert_="all")(
        params=model.parameters())
    buffer = _build_buffer(cfg, model)
    stats = ExperienceStats(info.n_classes)
    parts = RunComponents(
        model=model, optimizer=optimizer, device=device, stream=info, buffer=buffer,
        replay_plugin=_instantiate_logged("dataloader", cfg.dataloader),
        plugins=[stats, *(plugins or [])], evaluator=EvaluationPlugin(),
    )
    log.info("Instantiating strategy <%s>", cfg.strategy._target_)
    strategy = get_class(cfg.strategy._target_).from_run(parts, **node_args(cfg.strategy))
    buffer_args = node_args(cfg.buffer) if buffer is not None else {}
    return Components(benchmark, strategy, buffer, buffer_args, stats)


def buffer_metrics(parts: Components, n_classes: int) -> tuple[list[int], dict[str, float]]:
    """Per-class counts, and the buffer's size, bytes and group sizes as metrics."""
    buffer = parts.buffer
    if buffer is None:
        counts = [0] * n_classes
        return counts, {"buffer/size": 0.0, "buffer/bytes": 0.0,
                        **{f"buffer/class_{c:03d}": 0.0 for c in range(n_classes)}}
    counts = buffer.class_counts(n_classes)
    metrics = {"buffer/size": float(sum(counts)), "buffer/bytes": float(buffer.nbytes())}
    metrics.update({f"buffer/class_{c:03d}": float(n) for c, n in enumerate(counts)})
    kind = GROUP_METRIC.get(type(buffer).group_kind(parts.buffer_args))
    if kind is not None:
        metrics.update({f"buffer/{kind}_{key}": float(n)
                        for key, n in buffer.group_sizes().items()})
    return counts, metrics
