"""GDumb (Prabhu et al., ECCV 2020): a greedy class-balanced memory, and a model trained
from scratch on the memory alone.

Avalanche's ``GDumb`` / ``GDumbPlugin`` (same arguments, defaults and order): before each
experience the memory (class-balanced by default) is updated with the incoming data; then
the model is reset to its initial weights (the optimizer's state is dropped with them, as
Avalanche's parameter swap does) and trained on the memory only, for ``train_epochs`` with
the usual loader, optimizer and criterion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lazy_loader as lazy

from cl_runner.checks import NON_NEGATIVE_INT, one_of
from cl_runner.core import SupervisedPlugin
from cl_runner.training.rehearsal import RehearsalTemplate, storage_or_default
from cl_runner.training.strategy import default_evaluator

torch = lazy.load("torch")

REINIT = one_of(("initial", "random"))


def reset_model(model: Any, optimizer: Any, initial: Mapping[str, Any] | None) -> None:
    """Give ``model`` fresh weights in place (the optimizer keeps its parameters) and drop
    the optimizer's state: the ``initial`` tensors, or a new random draw (every submodule's
    ``reset_parameters``) when it is None. Non-tensor state (a multi-head classifier's active
    units) is kept, as Avalanche keeps adapting its initial model."""
    with torch.no_grad():
        if initial is not None:
            model.load_state_dict({**model.state_dict(), **initial})
        else:
            for module in model.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
    optimizer.state.clear()


class GDumbPlugin(SupervisedPlugin):
    """GDumb's memory and model reset (Avalanche's ``GDumbPlugin``).

    ``reinit="initial"`` (Avalanche) restores the weights the model had when the first
    experience started; ``"random"`` (the paper: "from scratch") draws new ones each time.
    """

    def __init__(
        self, mem_size: int = 200, *, storage_policy: Any = None, reinit: str = "initial"
    ) -> None:
        NON_NEGATIVE_INT("mem_size", mem_size)
        REINIT("reinit", reinit)
        from cl_runner.buffers import ClassBalancedBuffer

        self.mem_size = mem_size
        self.storage_policy = storage_or_default(
            storage_policy, mem_size, lambda m: ClassBalancedBuffer(m, adaptive_size=True))
        self.reinit = reinit
        self.init_model: dict[str, Any] | None = None

    def before_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        if self.init_model is None:
            self.init_model = {k: v.detach().clone()
                               for k, v in strategy.model.state_dict().items()
                               if torch.is_tensor(v)}
            return
        initial = self.init_model if self.reinit == "initial" else None
        reset_model(strategy.model, strategy.optimizer, initial)

    def after_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        self.storage_policy.update(strategy, **kwargs)
        strategy.adapted_dataset = self.storage_policy.buffer.train()

    def state_dict(self) -> dict[str, Any]:
        init = None if self.init_model is None else {
            k: v.cpu() for k, v in self.init_model.items()}
        return {"storage_policy": self.storage_policy.state_dict(), "init_model": init}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.storage_policy.load_state_dict(state["storage_policy"])
        self.init_model = state["init_model"]


class GDumb(RehearsalTemplate):
    """Naive plus ``GDumbPlugin`` (Avalanche's ``GDumb``).

    Without ``storage_policy`` the memory is a ``ClassBalancedBuffer(mem_size)``; any storage
    policy works (Mammoth's GDumb uses a reservoir).
    """

    short_name = "gdumb"

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        criterion: Any = None,
        mem_size: int = 200,
        train_mb_size: int = 1,
        train_epochs: int = 1,
        eval_mb_size: int | None = None,
        device: Any = None,
        plugins: Any = None,
        evaluator: Any = default_evaluator,
        eval_every: int = -1,
        peval_mode: str = "epoch",
        *,
        storage_policy: Any = None,
        reinit: str = "initial",
    ) -> None:
        GDumb.check_args(mem_size=mem_size, reinit=reinit)
        self.gdumb = GDumbPlugin(mem_size, storage_policy=storage_policy, reinit=reinit)
        self.storage_policy = self.gdumb.storage_policy
        super().__init__(model, optimizer, criterion, train_mb_size, train_epochs, eval_mb_size,
                         device, [self.gdumb, *(plugins or [])], evaluator,
                         eval_every, peval_mode)

    @classmethod
    def check_args(cls, mem_size: Any = 200, reinit: Any = "initial", **args: Any) -> None:
        super().check_args(**args)
        NON_NEGATIVE_INT("mem_size", mem_size)
        REINIT("reinit", reinit)
