"""MIR: Maximally Interfered Retrieval (Aljundi et al., NeurIPS 2019).

Avalanche's ``MIR`` / ``MIRPlugin`` (same arguments and defaults): every step draws up to
``subsample`` candidates from the memory, takes a *virtual* SGD step on the incoming batch
(theta' = theta - lr * grad of the incoming loss, plain SGD at the optimizer's first group's
learning rate), and replays the ``batch_size_mem`` candidates whose loss rises most under
theta'; their loss (the criterion, in the model's current mode) is added to the incoming one.
The memory (a class-balanced buffer by default) is updated after each experience - after
every chunk online - and the candidates come from the classes absent from that experience's
last mini-batch, cycled in shuffled batches of ``subsample`` until the next update.

Differences from Avalanche: the virtual model is a ``torch.func.functional_call`` with the
updated parameters (Avalanche deep-copies the model every step; same numbers, less work);
any storage policy can be used (``storage_policy``; the class exclusion works per sample);
an evaluation between the last step and the memory update cannot lose the last mini-batch
(Avalanche's plugin then fails an assert). The replayed loss is reported as ``loss_terms
["mir_replay"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.checks import POSITIVE_INT
from cl_runner.core import SupervisedPlugin
from cl_runner.models.tasks import forward_with_tasks
from cl_runner.training.rehearsal import RehearsalTemplate, storage_or_default
from cl_runner.training.strategy import default_evaluator

if TYPE_CHECKING:
    from torch import Tensor

    from cl_runner.data.dataset import ClassificationDataset

torch = lazy.load("torch")


def virtual_forward(model: Any, params: dict[str, Tensor], x: Tensor, t: Tensor) -> Tensor:
    """``model`` called with ``params`` in place of its parameters (buffers unchanged)."""
    from torch.func import functional_call

    args = (x, t) if getattr(model, "takes_task_labels", False) else (x,)
    return functional_call(model, params, args, strict=False)


def per_sample_loss(criterion: Any, output: Tensor, y: Tensor) -> Tensor:
    """``criterion`` without reduction (Avalanche switches ``criterion.reduction``)."""
    saved = criterion.reduction
    criterion.reduction = "none"
    try:
        return criterion(output, y)
    finally:
        criterion.reduction = saved


class MIRPlugin(SupervisedPlugin):
    """Maximally interfered retrieval from a memory (Avalanche's ``MIRPlugin``).

    ``batch_size_mem``: samples replayed per step; ``subsample``: candidates scored per step;
    ``storage_policy``: the memory (default ``ClassBalancedBuffer(mem_size)``).
    """

    def __init__(self, batch_size_mem: int, mem_size: int = 200, subsample: int = 200, *,
                 storage_policy: Any = None) -> None:
        self.check_args(batch_size_mem=batch_size_mem, subsample=subsample)
        from cl_runner.buffers import ClassBalancedBuffer

        self.mem_size, self.subsample, self.batch_size_mem = mem_size, subsample, batch_size_mem
        self.storage_policy = storage_or_default(
            storage_policy, mem_size, lambda m: ClassBalancedBuffer(m, adaptive_size=True))
        self.pool: ClassificationDataset | None = None
        self._order: Tensor | None = None
        self._at = 0

    @classmethod
    def check_args(cls, batch_size_mem: Any = 1, subsample: Any = 200, **_: Any) -> None:
        POSITIVE_INT("batch_size_mem", batch_size_mem)
        POSITIVE_INT("subsample", subsample)

    # -- candidates ------------------------------------------------------------------------
    def _candidates(self, device: Any) -> tuple[Tensor, Tensor, Tensor]:
        """The next ``subsample`` samples of the pool in a shuffled cycle (a pass's last
        batch may be short), as ``cycle(DataLoader(pool, subsample, shuffle=True))``."""
        pool = self.pool
        if self._order is None or self._at >= len(self._order):
            self._order, self._at = torch.randperm(len(pool)).to(pool.device), 0
        positions = self._order[self._at : self._at + self.subsample]
        self._at += self.subsample
        x, y, t = pool.gather(positions)
        return x.to(device), y.to(device), t.to(device)

    def before_backward(self, strategy: Any, **kwargs: Any) -> None:
        if self.pool is None:
            return
        x, y, t = self._candidates(strategy.device)
        model, criterion = strategy.model, strategy._criterion
        named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        grads = torch.autograd.grad(strategy.loss, [p for _, p in named], retain_graph=True,
                                    allow_unused=True)
        lr = strategy.optimizer.param_groups[0]["lr"]
        with torch.no_grad():
            virtual = {name: p if g is None else torch.add(p, g, alpha=-lr)
                       for (name, p), g in zip(named, grads, strict=True)}
            before = per_sample_loss(criterion, forward_with_tasks(model, x, t), y)
            after = per_sample_loss(criterion, virtual_forward(model, virtual, x, t), y)
            chosen = torch.topk(after - before, min(self.batch_size_mem, len(y))).indices
        replay = criterion(forward_with_tasks(model, x[chosen], t[chosen]), y[chosen])
        strategy.loss = strategy.loss + replay
        strategy.loss_terms["mir_replay"] = replay.detach()

    # -- memory ----------------------------------------------------------------------------
    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.storage_policy.update(strategy, **kwargs)
        buffer = self.storage_policy.buffer
        self.pool, self._order = None, None
        if len(buffer) == 0 or strategy.mbatch is None:
            return
        last = strategy.mb_y.to(buffer.device).unique()
        keep = torch.nonzero(~torch.isin(buffer.targets, last)).flatten()
        if len(keep) > self.batch_size_mem:
            self.pool = buffer.subset(keep)

    def state_dict(self) -> dict[str, Any]:
        return {"storage_policy": self.storage_policy.state_dict(),
                "pool": None if self.pool is None else self.pool.state_dict(),
                "order": None if self._order is None else self._order.cpu(), "at": self._at}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        from cl_runner.data.dataset import ClassificationDataset

        self.storage_policy.load_state_dict(state["storage_policy"])
        self.pool = (None if state["pool"] is None
                     else ClassificationDataset.from_state_dict(state["pool"]))
        order = state["order"]
        self._order = None if order is None or self.pool is None else order.to(self.pool.device)
        self._at = state["at"]


class MIR(RehearsalTemplate):
    """Naive fine-tuning plus ``MIRPlugin`` (Avalanche's ``MIR``, same arguments).

    ``mem_size`` and ``subsample`` have no default, as in Avalanche; ``cl-run`` sets
    ``mem_size`` from ``buffer.max_size``.
    """

    short_name = "mir"
    buffer_hint = "any storage policy"

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        criterion: Any = None,
        mem_size: int = 200,
        subsample: int = 200,
        batch_size_mem: int = 1,
        train_mb_size: int = 1,
        train_epochs: int = 1,
        eval_mb_size: int | None = 1,
        device: Any = None,
        plugins: Any = None,
        evaluator: Any = default_evaluator,
        eval_every: int = -1,
        peval_mode: str = "epoch",
        *,
        storage_policy: Any = None,
    ) -> None:
        self.mir = MIRPlugin(batch_size_mem, mem_size, subsample, storage_policy=storage_policy)
        self.storage_policy = self.mir.storage_policy
        # the method's plugin runs first, as in cl_runner.training.rehearsal (Avalanche
        # appends it): the caller's plugins see the loss with the replayed term
        super().__init__(model, optimizer, criterion, train_mb_size, train_epochs, eval_mb_size,
                         device, [self.mir, *(plugins or [])], evaluator, eval_every, peval_mode)

    @classmethod
    def check_args(cls, batch_size_mem: Any = 1, subsample: Any = 200, **args: Any) -> None:
        MIRPlugin.check_args(batch_size_mem=batch_size_mem, subsample=subsample)
        super().check_args(**args)
