"""What components declare, and the runner asking them: a buffer defined in this file (not in
the package) goes through validation, naming, composition logging, checkpoint and resume."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from cl_runner.benchmarks import StreamInfo
from cl_runner.buffers import ExemplarsBuffer
from cl_runner.checks import SettingError, one_of
from cl_runner.core import CallbackNameWarning, SupervisedPlugin
from cl_runner.errors import UserError
from tests.helpers import history, local_store, run_here, runs_of

TOY = ("buffer=reservoir", "buffer._target_=tests.test_components.NewestPerClassBuffer",
       "+buffer.keep=newest", "strategy.train_epochs=1")


class NewestPerClassBuffer(ExemplarsBuffer):
    """A toy storage policy: the newest (or oldest) samples, as many per class as fit."""

    short_name = "newest"
    _KEEP = one_of(("newest", "oldest"))

    def __init__(self, max_size: int, keep: str = "newest") -> None:
        self.check_args(max_size=max_size, keep=keep)
        super().__init__(max_size)
        self.keep = keep

    @classmethod
    def check_args(cls, max_size: Any = 0, keep: Any = "newest", **args: Any) -> None:
        super().check_args(max_size)
        cls._KEEP("keep", keep)

    @classmethod
    def group_kind(cls, args: Mapping[str, Any]) -> str | None:
        return "class"

    def post_adapt(self, agent: Any, exp: Any) -> None:
        data = self.buffer.concat(exp.dataset) if self.keep == "newest" else (
            exp.dataset.concat(self.buffer))
        per_class = self.max_size // int(data.targets.unique().numel())
        keep = torch.cat([torch.nonzero(data.targets == c).flatten()[-per_class:]
                          for c in data.targets.unique()])
        self.buffer = data.subset(keep.sort().values)

    def resize(self, strategy: Any, new_size: int) -> None:
        self.max_size = new_size
        self.buffer = self.buffer.subset(torch.arange(min(new_size, len(self.buffer))))


def test_a_buffer_from_outside_the_package_is_validated_by_its_own_rules(tmp_path: Path):
    with pytest.raises(SettingError, match="buffer.keep='middle' is not allowed: one of newest"):
        run_here(tmp_path, *TOY, "buffer.keep=middle")
    with pytest.raises(SettingError, match="buffer.max_size=5 is not allowed: at least 10: one "
                                           "sample for each of the 10 classes"):
        run_here(tmp_path, *TOY, "buffer.max_size=5")
    with pytest.raises(UserError, match="buffer.size=1 is not allowed: not a setting of "
                                        "NewestPerClassBuffer"):
        run_here(tmp_path, *TOY, "+buffer.size=1")


def test_a_buffer_from_outside_the_package_runs_names_logs_and_resumes(tmp_path: Path):
    reference = run_here(tmp_path / "reference", "tracking=none", *TOY, "buffer.max_size=50")
    root = tmp_path / "crashed"
    crash = ("dataloader._target_=tests.crash_plugins.CrashingReplay", "+dataloader.crash_at=3")
    with pytest.raises(RuntimeError, match="boom"):
        run_here(root, *TOY, "buffer.max_size=50", *crash)
    resumed = run_here(root, *TOY, "buffer.max_size=50", "resume=true",
                       "resume_allow_changes=[dataloader]")
    assert resumed.matrix.rows == reference.matrix.rows
    assert resumed.name == "newest-m50-s0"
    uri = local_store(root)
    (run,) = runs_of(uri)
    assert run.info.status == "FINISHED"
    per_class = {c: history(uri, run.info.run_id, f"buffer/class_{c:03d}") for c in range(10)}
    sizes = history(uri, run.info.run_id, "buffer/size")
    assert [sum(per_class[c][i][1] for c in range(10)) for i in range(5)] == [s for _, s in sizes]
    assert sizes[-1] == (4, 50)  # 5 per class over the 10 classes seen
    assert not any(k.startswith("buffer/class_group") for k in run.data.metrics)


def test_builtin_buffers_declare_groups_and_names():
    from cl_runner.buffers import (
        ClassBalancedBuffer,
        ExperienceBalancedBuffer,
        ParametricBuffer,
        ReservoirSamplingBuffer,
    )

    stream = StreamInfo(n_classes=10, n_experiences=5, n_tasks=5, input_shape=(64,))
    assert ReservoirSamplingBuffer.group_kind({}) is None
    assert ClassBalancedBuffer.group_kind({}) == "class"
    assert ExperienceBalancedBuffer.group_kind({}) == "experience"
    assert [ParametricBuffer.group_kind({"groupby": g}) for g in (None, "class", "task")] == [
        "all", "class", "task"]
    assert ParametricBuffer.name_parts({"groupby": None}) == ["parametric", "all"]
    assert ParametricBuffer.group_count({"groupby": "task"}, stream) == (5, "tasks")
    with pytest.raises(SettingError, match="num_experiences=3 is not allowed: an integer >= 5"):
        ExperienceBalancedBuffer.check_stream(
            {"max_size": 100, "adaptive_size": False, "num_experiences": 3}, stream)


def test_a_misspelled_callback_warns_with_its_name():
    with pytest.warns(CallbackNameWarning, match=r"\.after_trainig_exp is not a strategy callback "
                                                 r".*did you mean after_training_exp"):
        class Typo(SupervisedPlugin):
            def after_trainig_exp(self, strategy, **kwargs):
                pass

    with warnings.catch_warnings():
        warnings.simplefilter("error")

        class Fine(SupervisedPlugin):
            def after_training_exp(self, strategy, **kwargs):
                pass

            def helper(self):
                pass


@pytest.mark.parametrize(("option", "args", "shape"), [
    ("simple_mlp", {"hidden_size": 32, "hidden_layers": 2}, (64,)),
    ("multihead_mlp", {"hidden_size": 16, "n_tasks": 5}, (64,)),
    ("simple_cnn", {"width": 8}, (1, 28, 28)),
])
def test_model_settings_count_the_parameters_the_network_has(option, args, shape):
    from hydra.utils import instantiate

    from cl_runner.models.settings import SCHEMAS

    info = StreamInfo(n_classes=10, n_experiences=5, n_tasks=5, input_shape=shape)
    settings = SCHEMAS[option](**args)
    fills = {"num_classes": 10, "input_size": info.input_size, "in_channels": shape[0],
             "n_tasks": args.get("n_tasks", 5)}
    model = instantiate({"_target_": settings._target_, **args,
                         **{k: v for k, v in fills.items() if hasattr(settings, k)}})
    assert settings.n_parameters(info) == sum(p.numel() for p in model.parameters())
    names = dict(model.named_modules())
    assert all(name in names for name in settings.layer_names())
