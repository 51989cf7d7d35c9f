"""ER-ACE: experience replay with the asymmetric cross-entropy (Caccia et al., ICLR 2022).

Avalanche's ``ER_ACE`` (same arguments, defaults and order): the memory (a class-balanced
buffer by default) is updated with the incoming experience BEFORE training on it; from the
second experience on, every step also draws ``batch_size_mem`` memory samples (shuffled,
incomplete last batch dropped) and forwards them separately. The loss is

    L = 1/2 * [ CE(z_mem, y_mem) + CE over the classes present in the incoming batch ]

i.e. the incoming batch's softmax masks every class absent from it, so new classes do not
push old classes' logits down; the memory batch's loss runs over all classes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.checks import NON_NEGATIVE_INT, POSITIVE_INT
from cl_runner.core import SupervisedPlugin
from cl_runner.models.tasks import forward_with_tasks
from cl_runner.training.rehearsal import (
    MemoryBatch,
    RehearsalTemplate,
    memory_batches,
    storage_or_default,
)
from cl_runner.training.strategy import default_evaluator

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy.load("torch")


def asymmetric_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy whose softmax runs only over the classes present in ``targets``
    (the other columns are masked to -inf): ER-ACE's loss on the incoming batch."""
    present = torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
    present[targets] = True
    return torch.nn.functional.cross_entropy(logits.masked_fill(~present, float("-inf")), targets)


class _ERACEMemory(SupervisedPlugin):
    """The memory of ER-ACE: written before each experience, read as separate batches."""

    def __init__(self, storage_policy: Any, batch_size_mem: int) -> None:
        self.storage_policy = storage_policy
        self.batch_size_mem = batch_size_mem
        self.replay: Iterator[MemoryBatch] | None = None

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.storage_policy.update(strategy, **kwargs)
        buffer = self.storage_policy.buffer
        self.replay = None
        if len(buffer) >= self.batch_size_mem and strategy.experience.current_experience > 0:
            self.replay = memory_batches(buffer, self.batch_size_mem, strategy.device)

    def after_training(self, strategy: Any, **kwargs: Any) -> None:
        self.replay = None

    def state_dict(self) -> dict[str, Any]:
        return {"storage_policy": self.storage_policy.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.storage_policy.load_state_dict(state["storage_policy"])


class ER_ACE(RehearsalTemplate):  # noqa: N801 - Avalanche's class name
    """Experience replay with the asymmetric cross-entropy (Avalanche's ``ER_ACE``).

    Without ``storage_policy`` the memory is a ``ClassBalancedBuffer(mem_size)``; any storage
    policy works. ``loss_terms``: ``memory_ce`` and ``incoming_ace``, the two halves of the
    loss (present from the second experience on).
    """

    short_name = "er_ace"

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        criterion: Any = None,
        mem_size: int = 200,
        batch_size_mem: int = 10,
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
        ER_ACE.check_args(mem_size=mem_size, batch_size_mem=batch_size_mem)
        from cl_runner.buffers import ClassBalancedBuffer

        self.storage_policy = storage_or_default(
            storage_policy, mem_size, lambda m: ClassBalancedBuffer(m, adaptive_size=True))
        self.mem_size, self.batch_size_mem = mem_size, batch_size_mem
        self._memory = _ERACEMemory(self.storage_policy, batch_size_mem)
        # the method's plugin runs first (see cl_runner.training.rehearsal)
        super().__init__(model, optimizer, criterion, train_mb_size, train_epochs, eval_mb_size,
                         device, [self._memory, *(plugins or [])], evaluator,
                         eval_every, peval_mode)
        self.mb_buffer_out: Tensor | None = None
        self.mb_buffer_y: Tensor | None = None

    @classmethod
    def check_args(cls, mem_size: Any = 200, batch_size_mem: Any = 10, **args: Any) -> None:
        super().check_args(**args)
        NON_NEGATIVE_INT("mem_size", mem_size)
        POSITIVE_INT("batch_size_mem", batch_size_mem)

    def forward(self) -> Tensor:
        self.mb_buffer_out = self.mb_buffer_y = None
        replay = self._memory.replay if self.is_training else None
        if replay is None:
            return super().forward()
        x, y, t, _ = next(replay)  # drawn before the incoming forward, as Avalanche does
        out = super().forward()
        self.mb_buffer_out = forward_with_tasks(self.model, x, t)
        self.mb_buffer_y = y
        return out

    def criterion(self) -> Tensor:
        if self.mb_buffer_out is None or not self.is_training:
            return super().criterion()
        memory = torch.nn.functional.cross_entropy(self.mb_buffer_out, self.mb_buffer_y) / 2
        incoming = asymmetric_cross_entropy(self.mb_output, self.mb_y) / 2
        self.loss_terms["memory_ce"] = memory.detach()
        self.loss_terms["incoming_ace"] = incoming.detach()
        return memory + incoming
