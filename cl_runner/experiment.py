"""Build a run's objects from the composed config and drive the experience loop."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cl_runner.benchmarks.base import Benchmark
from cl_runner.evaluation.collectors import ExperienceStats
from cl_runner.evaluation.matrix import AccuracyMatrix
from cl_runner.evaluation.plugin import EvaluationPlugin
from cl_runner.models import flat_size

log = logging.getLogger(__name__)


@dataclass
class Components:
    """Everything a run trains and evaluates with, built once from the config."""

    benchmark: Benchmark
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    buffer: Any | None
    strategy: Any
    stats: ExperienceStats
    extra: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed every RNG a run draws from (torch, numpy, python)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _model_args(model_cfg: DictConfig, benchmark: Benchmark) -> dict[str, Any]:
    """Fill the model settings left null from the benchmark's shape."""
    derived = {
        "num_classes": benchmark.n_classes,
        "input_size": flat_size(benchmark.input_shape),
        "in_channels": benchmark.input_shape[0],
        "n_tasks": benchmark.n_experiences,
    }
    return {k: v for k, v in derived.items() if k in model_cfg and model_cfg[k] is None}


def _instantiate_logged(group: str, cfg: DictConfig, **kwargs: Any) -> Any:
    log.info("Instantiating %s <%s>", group, cfg.get("_target_"))
    return instantiate(cfg, **kwargs)


def build(cfg: DictConfig, plugins: list[Any] | None = None) -> Components:
    """Instantiate benchmark, model, optimizer, buffer, replay plugin and strategy."""
    seed_everything(int(cfg.seed))
    device = torch.device(cfg.device)
    benchmark = _instantiate_logged("benchmark", cfg.benchmark)
    if device.type != "cpu":
        benchmark.to(device)
    model = _instantiate_logged("model", cfg.model, **_model_args(cfg.model, benchmark))
    model.to(device)
    optimizer = _instantiate_logged("optimizer", cfg.optimizer)(params=model.parameters())
    buffer = None
    strategy_plugins = list(plugins or [])
    if cfg.buffer.get("_target_"):
        selection = _instantiate_logged("selection", cfg.selection)
        if cfg.selection.get("_partial_"):
            selection = selection(model=model)
        kwargs = {"selection_strategy": selection} if "groupby" in cfg.buffer else {}
        buffer = _instantiate_logged("buffer", cfg.buffer, **kwargs)
        replay = _instantiate_logged("dataloader", cfg.dataloader)
        strategy_plugins.insert(0, replay(mem_size=buffer.max_size, storage_policy=buffer))
    stats = ExperienceStats()
    strategy = _instantiate_logged("strategy", cfg.strategy)(
        model=model, optimizer=optimizer, device=device,
        plugins=[stats, *strategy_plugins], evaluator=EvaluationPlugin(),
    )
    return Components(benchmark, model, optimizer, buffer, strategy, stats)


def buffer_composition(buffer: Any | None, n_classes: int) -> tuple[list[int], dict[str, int]]:
    """Samples per class, and per group for grouped buffers (key -> size)."""
    if buffer is None or len(buffer.buffer) == 0:
        return [0] * n_classes, {}
    counts = torch.bincount(buffer.buffer.targets.cpu(), minlength=n_classes).tolist()
    groups = getattr(buffer, "buffer_groups", None) or {}
    return counts, {str(k): len(g.buffer) for k, g in groups.items()}


def experience_metrics(
    matrix: AccuracyMatrix, stats: ExperienceStats, class_counts: list[int],
    group_sizes: dict[str, int], buffer_kind: str,
) -> dict[str, float]:
    """What MLflow receives after training experience ``i`` (the matrix's last row)."""
    i = matrix.n_trained - 1
    metrics: dict[str, float] = {
        f"accuracy/exp_{j:03d}": matrix[i, j] for j in range(matrix.n)
    }
    metrics["accuracy/stream"] = stats.stream_accuracy
    metrics["accuracy/average_seen"] = matrix.average_accuracy(i)
    for j, value in enumerate(matrix.forgetting(i)):
        metrics[f"forgetting/exp_{j:03d}"] = value
    metrics["forgetting/average"] = matrix.average_forgetting(i)
    metrics["bwt"] = matrix.bwt(i)
    metrics["buffer/size"] = sum(class_counts)
    for c, n in enumerate(class_counts):
        metrics[f"buffer/class_{c:03d}"] = n
    for key, n in group_sizes.items():
        metrics[f"buffer/{buffer_kind}_{key}"] = n
    metrics["train/loss"] = stats.train_loss
    metrics["train/iterations"] = stats.train_iterations
    metrics["train/samples_per_s"] = (
        stats.train_samples / stats.train_seconds if stats.train_seconds > 0 else 0.0
    )
    metrics["time/train_s"] = stats.train_seconds
    metrics["time/eval_s"] = stats.eval_seconds
    return metrics


def buffer_group_kind(cfg: DictConfig) -> str:
    """What a buffer's groups are, for metric names: class, task, experience or group."""
    target = str(cfg.buffer.get("_target_") or "")
    if target.endswith("ClassBalancedBuffer"):
        return "class_group"
    if target.endswith("ExperienceBalancedBuffer"):
        return "experience"
    groupby = cfg.buffer.get("groupby")
    return {"class": "class_group", "task": "task", "experience": "experience"}.get(
        groupby, "group"
    )


def config_dict(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
