"""Every option of every config group composes, validates and instantiates (no training)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
from hydra.utils import get_class, instantiate

from cl_runner.config import validate
from cl_runner.config.targets import node_args
from tests.helpers import compose_config

CONF = files("cl_runner.conf")
GROUPS = ["benchmark", "model", "optimizer", "strategy", "buffer", "selection", "dataloader",
          "tracking", "experiment"]
OPTIONS = [(g, p.name.removesuffix(".yaml")) for g in GROUPS
           for p in sorted(CONF.joinpath(g).iterdir()) if p.name.endswith(".yaml")]
# what an option needs from the other groups to make sense
NEEDS = {"selection": ["buffer=parametric"], "task_balanced": ["benchmark.return_task_id=true"],
         "simple_cnn": ["benchmark=split_mnist"],
         "multihead_mlp": ["benchmark.return_task_id=true"]}


def compose_with(tmp_path: Path, *overrides: str):
    return compose_config(tmp_path, f"paths.data_root={tmp_path}", *overrides)


def own_data(tmp_path: Path, option: str) -> list[str]:
    """The data a user-data benchmark option needs (10 classes in 5 experiences)."""
    from tests.own_data import write_image_folder, write_tensors_file

    if option == "tensors":
        path = write_tensors_file(tmp_path)
        return [f"benchmark.path={path}", "benchmark.n_experiences=5"]
    if option == "image_folder":
        root = write_image_folder(tmp_path / "images", per_class=1)
        return [f"benchmark.root={root}", "benchmark.n_experiences=5"]
    return []


def made_by(group: str, node) -> object | None:
    """The object a group's node builds (as the runner builds it, with stand-in inputs)."""
    from cl_runner.models import SimpleMLP

    if not node.get("_target_") or group not in ("model", "optimizer", "buffer", "selection",
                                                  "dataloader"):
        return None
    fills = {"num_classes": 10, "input_size": 64, "in_channels": 1, "n_tasks": 5}
    obj = instantiate(node, **{k: v for k, v in fills.items() if group == "model" and k in node})
    if group == "optimizer":
        return obj(params=SimpleMLP(num_classes=10, input_size=64).parameters())
    if group == "selection" and node.get("_partial_"):
        return obj(model=SimpleMLP(num_classes=10, input_size=64))
    if group == "dataloader":
        return obj(mem_size=10, storage_policy=None)
    return obj


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_validates_and_builds(tmp_path: Path, group: str, option: str):
    import torch

    from cl_runner.buffers import ExemplarsBuffer, ExemplarsSelectionStrategy
    from cl_runner.core import SupervisedPlugin
    from cl_runner.training import SupervisedTemplate

    extra = NEEDS.get(group, []) + NEEDS.get(option, [])
    if group == "benchmark":
        extra += own_data(tmp_path, option)
    cfg = compose_with(tmp_path, f"{group}={option}", *extra)
    info = validate(cfg)
    assert info.n_classes in (10, 100) and info.n_experiences >= 1
    if group == "experiment":  # a _global_ preset: it sets other groups, not its own node
        # presets: the seed tutorial's (Fashion-MNIST), Mammoth's Seq-MNIST ones (MNIST)
        assert cfg.benchmark._target_.endswith(("SplitFMNIST", "SplitMNIST"))
        assert cfg.buffer.max_size == 500
    elif group == "tracking":
        assert cfg.tracking.enabled is (option == "mlflow")
    elif group == "strategy":
        cls = get_class(cfg.strategy._target_)
        assert issubclass(cls, SupervisedTemplate)
        cls.check_args(**node_args(cfg.strategy))
    expected = {"model": torch.nn.Module, "optimizer": torch.optim.Optimizer,
                "buffer": ExemplarsBuffer, "selection": ExemplarsSelectionStrategy,
                "dataloader": SupervisedPlugin}
    built = made_by(group, cfg[group]) if group in cfg else None
    assert built is None or isinstance(built, expected[group])
    assert (built is None) == (group not in expected or option == "none")


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


def test_a_method_picks_its_memory_over_the_benchmark_preset(tmp_path: Path):
    cfg = compose_with(tmp_path, "benchmark=split_fmnist", "strategy=naive")
    assert cfg.buffer._target_ is None  # naive: no memory, whatever the preset replays from
    assert cfg.strategy.train_mb_size == 100  # the preset's training sizes still apply
    cfg = compose_with(tmp_path, "strategy=naive", "buffer=reservoir")
    assert cfg.buffer._target_.endswith("ReservoirSamplingBuffer")  # the command line wins
