"""Every option of every config group composes, validates and instantiates (no training)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from cl_runner.config import validate

CONF = files("cl_runner.conf")
GROUPS = ["benchmark", "model", "optimizer", "strategy", "buffer", "selection", "dataloader",
          "tracking", "experiment"]
OPTIONS = [(g, p.name.removesuffix(".yaml")) for g in GROUPS
           for p in sorted(CONF.joinpath(g).iterdir()) if p.name.endswith(".yaml")]


def compose_with(tmp_path: Path, *overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_module("cl_runner.conf", version_base="1.3"):
        return compose("config", overrides=[f"paths.output_root={tmp_path}",
                                            f"paths.data_root={tmp_path}", *overrides])


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_validates(tmp_path: Path, group: str, option: str):
    extra = {"selection": ["buffer=parametric"],
             "dataloader": ["benchmark.return_task_id=true"] if option == "task_balanced" else []}
    cfg = compose_with(tmp_path, f"{group}={option}", *extra.get(group, []))
    validate(cfg)
    if group == "experiment":  # a _global_ preset: it sets other groups, not its own node
        assert cfg.benchmark._target_.endswith("SplitFMNIST") and cfg.buffer.max_size == 500
    else:
        assert cfg[group] is not None


def test_benchmark_presets_set_their_protocol(tmp_path: Path):
    cfg = compose_with(tmp_path, "benchmark=split_fmnist")
    assert cfg.buffer._target_.endswith("ClassBalancedBuffer") and cfg.buffer.max_size == 500
    assert cfg.strategy.train_mb_size == 100 and cfg.strategy.train_epochs == 1
    cifar = compose_with(tmp_path, "benchmark=split_cifar10")
    assert cifar.model._target_.endswith("SimpleCNN")
    # the command line still wins over the preset
    cfg = compose_with(tmp_path, "benchmark=split_fmnist", "buffer=reservoir",
                       "strategy.train_epochs=3")
    assert cfg.buffer._target_.endswith("ReservoirSamplingBuffer") and cfg.buffer.max_size == 500
    assert cfg.strategy.train_epochs == 3


@pytest.mark.parametrize("group", ["model", "optimizer", "buffer", "selection", "dataloader"])
def test_group_options_instantiate(tmp_path: Path, group: str):
    from cl_runner.models import SimpleMLP

    model = SimpleMLP(num_classes=10, input_size=64)
    for g, option in OPTIONS:
        if g != group:
            continue
        cfg = compose_with(tmp_path, f"{group}={option}")
        node = cfg[group]
        if not node.get("_target_"):
            continue
        fills = {"model": {"num_classes": 10, "input_size": 64, "in_channels": 1, "n_tasks": 5}}
        kwargs = {k: v for k, v in fills.get(group, {}).items() if k in node}
        obj = instantiate(node, **kwargs)
        if group == "optimizer":
            obj(params=model.parameters())
        elif group == "selection" and node.get("_partial_"):
            obj(model=model)
        elif group == "dataloader":
            obj(mem_size=10, storage_policy=None)
