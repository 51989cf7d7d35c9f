"""Dark Experience Replay, DER and DER++ (Buzzega et al., NeurIPS 2020).

Avalanche's ``DER`` (same arguments, defaults and order; ``beta=0`` is DER, the default
``beta=0.5`` DER++). After each experience the network's logits on the experience's samples
(eval mode, no augmentation) are attached to them as the ``logits`` payload and the samples
are offered to the memory, which keeps each stored sample's logits next to it through every
update, resize and checkpoint (class-balanced memory by default). From then on, while the
memory holds at least ``batch_size_mem`` samples, each step prepends ``batch_size_mem``
memory samples (shuffled, incomplete last batch dropped) to the incoming batch for ONE joint
forward, and the loss is

    L = CE(z_in, y_in) + alpha * MSE(z_mem, stored logits) + beta * CE(z_mem, y_mem)

with the MSE averaged over all ``batch_size_mem x classes`` entries.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.checks import NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, OPTIONAL_POSITIVE_INT
from cl_runner.core import SupervisedPlugin
from cl_runner.training.rehearsal import (
    MemoryBatch,
    RehearsalTemplate,
    dataset_outputs,
    memory_batches,
    storage_or_default,
    with_experience,
)
from cl_runner.training.strategy import default_evaluator

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy.load("torch")

LOGITS = "logits"  # the payload name of the stored logits


class _DERMemory(SupervisedPlugin):
    """The memory of DER: samples with their logits, written after each experience."""

    def __init__(self, storage_policy: Any, batch_size_mem: int | None) -> None:
        self.storage_policy = storage_policy
        self.batch_size_mem = batch_size_mem
        self.replay: Iterator[MemoryBatch] | None = None

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        size = self.batch_size_mem or strategy.train_mb_size
        buffer = self.storage_policy.buffer
        self.replay = None
        if len(buffer) >= size:
            self.replay = memory_batches(buffer, size, strategy.device)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.replay = None
        data = strategy.experience.dataset
        logits = dataset_outputs(strategy.model, data, strategy.train_mb_size, strategy.device)
        data = data.with_payload(**{LOGITS: logits.to(data.device)})
        self.storage_policy.update(with_experience(strategy, data), **kwargs)

    def after_training(self, strategy: Any, **kwargs: Any) -> None:
        self.replay = None

    def state_dict(self) -> dict[str, Any]:
        return {"storage_policy": self.storage_policy.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.storage_policy.load_state_dict(state["storage_policy"])


class DER(RehearsalTemplate):
    """Dark Experience Replay (Avalanche's ``DER``): ``beta=0`` is DER, ``beta>0`` DER++.

    Without ``storage_policy`` the memory is a ``ClassBalancedBuffer(mem_size)``; any storage
    policy works (``buffer=reservoir`` is the paper's). ``batch_size_mem=None`` means
    ``train_mb_size``. ``loss_terms``: ``incoming_ce``, ``logit_replay`` (alpha * MSE) and,
    for DER++, ``memory_ce`` (beta * CE), the parts of the loss once the memory is used.
    """

    short_name = "der"

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        criterion: Any = None,
        mem_size: int = 200,
        batch_size_mem: int | None = None,
        alpha: float = 0.1,
        beta: float = 0.5,
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
        DER.check_args(mem_size=mem_size, batch_size_mem=batch_size_mem, alpha=alpha, beta=beta)
        from cl_runner.buffers import ClassBalancedBuffer

        self.storage_policy = storage_or_default(
            storage_policy, mem_size, lambda m: ClassBalancedBuffer(m, adaptive_size=True))
        self.mem_size, self.batch_size_mem = mem_size, batch_size_mem
        self.alpha, self.beta = alpha, beta
        self._memory = _DERMemory(self.storage_policy, batch_size_mem)
        # the method's plugin runs first (see cl_runner.training.rehearsal)
        super().__init__(model, optimizer, criterion, train_mb_size, train_epochs, eval_mb_size,
                         device, [self._memory, *(plugins or [])], evaluator,
                         eval_every, peval_mode)
        self.batch_logits: Tensor | None = None

    @classmethod
    def check_args(cls, mem_size: Any = 200, batch_size_mem: Any = None, alpha: Any = 0.1,
                   beta: Any = 0.5, **args: Any) -> None:
        super().check_args(**args)
        NON_NEGATIVE_INT("mem_size", mem_size)
        OPTIONAL_POSITIVE_INT("batch_size_mem", batch_size_mem)
        NON_NEGATIVE_NUMBER("alpha", alpha)
        NON_NEGATIVE_NUMBER("beta", beta)

    def forward(self) -> Tensor:
        """Training with memory: the memory batch goes first, one joint forward."""
        self.batch_logits = None
        replay = self._memory.replay if self.is_training else None
        if replay is not None:
            x, y, t, payload = next(replay)
            self.mbatch = [torch.cat((x, self.mb_x)), torch.cat((y, self.mb_y)),
                           torch.cat((t, self.mb_task_id)), *self.mbatch[3:]]
            self.batch_logits = payload[LOGITS]
        return super().forward()

    def criterion(self) -> Tensor:
        if self.batch_logits is None or not self.is_training:
            return super().criterion()
        m = len(self.batch_logits)
        out, y = self.mb_output, self.mb_y
        incoming = self._criterion(out[m:], y[m:])
        replay = self.alpha * torch.nn.functional.mse_loss(out[:m], self.batch_logits)
        self.loss_terms["incoming_ce"] = incoming.detach()
        self.loss_terms["logit_replay"] = replay.detach()
        loss = incoming + replay
        if self.beta:
            memory = self.beta * self._criterion(out[:m], y[:m])
            self.loss_terms["memory_ce"] = memory.detach()
            loss = loss + memory
        return loss


class DERpp(DER):
    """DER++: ``DER`` under its own run-name prefix (``strategy=derpp`` selects it)."""

    short_name = "derpp"
