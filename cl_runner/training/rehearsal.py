"""What the rehearsal methods (ER-ACE, DER, GDumb, iCaRL, A-GEM, BiC) share.

- ``RehearsalTemplate``: a strategy that keeps a memory. Under ``cl-run`` the memory is the
  ``buffer`` group's storage policy (its size is ``buffer.max_size``); the class declares
  which kinds of buffer it can use and refuses the others (and ``buffer=none``) in one line
  before any data is loaded.
- ``memory_batches``: endless shuffled mini-batches of a memory snapshot (Avalanche's
  ``cycle(DataLoader(memory, batch_size, shuffle=True, drop_last=True))``), gathered with one
  index operation per step, payload (e.g. DER's logits) included.
- ``with_experience``: the strategy as a buffer sees it, with another ``experience`` (to add
  data a method prepared: DER's samples with their logits, BiC's training part).
- ``dataset_outputs``: a network's outputs on a whole dataset (eval mode, no augmentation).

Each method keeps its memory and state in one plugin (checkpointed with the strategy's
plugins). That plugin comes FIRST in ``strategy.plugins``, before the caller's plugins
(Avalanche appends a wrapper's plugin after them; ER-ACE and DER do their memory work in the
strategy before any plugin): callers' plugins then see the method's effect (the final loss,
the memory batch), and the runner's timers and guards include the method's own work.

Importing this module loads no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import lazy_loader as lazy

from cl_runner.checks import SettingError
from cl_runner.models.tasks import forward_with_tasks
from cl_runner.training.strategy import RunComponents, SupervisedTemplate

if TYPE_CHECKING:
    from torch import Tensor, nn

    from cl_runner.benchmarks.info import StreamInfo
    from cl_runner.data.dataset import ClassificationDataset

torch = lazy.load("torch")

MemoryBatch = tuple["Tensor", "Tensor", "Tensor", dict[str, "Tensor"]]


class RehearsalTemplate(SupervisedTemplate):
    """A strategy with a memory from the ``buffer`` group.

    Subclasses set ``memory_arg`` (the constructor argument ``cl-run`` fills with
    ``buffer.max_size``), ``buffer_groups`` (the ``group_kind`` values of the storage
    policies the method can use; None: any) and ``buffer_hint`` (what to choose instead).
    """

    takes_memory = True
    memory_arg: ClassVar[str] = "mem_size"
    buffer_groups: ClassVar[tuple[str | None, ...] | None] = None
    buffer_hint: ClassVar[str] = ""
    #: the buffer option the method's config picks (named in error messages)
    default_buffer: ClassVar[str] = "class_balanced"

    @classmethod
    def check_buffer(cls, buffer: type | None, args: Mapping[str, Any]) -> None:
        if buffer is None:
            raise SettingError("buffer", "none",
                               f"a storage policy: strategy={cls.short_name} learns from a "
                               f"memory (its default: buffer={cls.default_buffer}; "
                               "strategy=naive trains without one)")
        if cls.buffer_groups is not None and buffer.group_kind(args) not in cls.buffer_groups:
            kind = buffer.group_kind(args)
            grouped = f"grouped by {kind}" if kind and kind != "all" else "ungrouped"
            raise SettingError("buffer", buffer.short_name,
                               f"{cls.buffer_hint} (buffer={buffer.short_name} is {grouped})")

    @classmethod
    def check_stream(cls, args: Mapping[str, Any], stream: StreamInfo) -> None:
        if cls.memory_arg in args:
            raise SettingError(cls.memory_arg, args[cls.memory_arg],
                               "left unset: cl-run sizes the memory with buffer.max_size")

    @classmethod
    def from_run(cls, parts: RunComponents, **args: Any) -> SupervisedTemplate:
        buffer = parts.buffer
        return cls(model=parts.model, optimizer=parts.optimizer, device=parts.device,
                   plugins=parts.plugins, evaluator=parts.evaluator, storage_policy=buffer,
                   **{cls.memory_arg: buffer.max_size}, **args)


def storage_or_default(storage_policy: Any, mem_size: int, default: Callable[[int], Any]) -> Any:
    """``storage_policy`` (whose ``max_size`` must be ``mem_size``), else ``default(mem_size)``."""
    if storage_policy is None:
        return default(mem_size)
    if storage_policy.max_size != mem_size:
        raise ValueError(f"mem_size={mem_size} differs from storage_policy.max_size="
                         f"{storage_policy.max_size}: they must be equal")
    return storage_policy


class _StrategyView:
    """``strategy`` with ``experience`` replaced (every other attribute is the strategy's)."""

    def __init__(self, strategy: Any, experience: Any) -> None:
        self._strategy = strategy
        self.experience = experience

    def __getattr__(self, name: str) -> Any:
        return getattr(self._strategy, name)


def with_experience(strategy: Any, data: ClassificationDataset) -> Any:
    """The strategy as a storage policy's ``update`` reads it, its current experience holding
    ``data`` instead of the experience's own dataset (works with ``update``-only buffers)."""
    experience = strategy.experience
    try:
        experience = replace(experience, dataset=data)
    except TypeError:  # not a dataclass: a plain object with the same attributes
        from types import SimpleNamespace

        experience = SimpleNamespace(**{**vars(experience), "dataset": data})
    return _StrategyView(strategy, experience)


def memory_batches(
    data: ClassificationDataset, batch_size: int, device: Any
) -> Iterator[MemoryBatch]:
    """Endless ``(x, y, t, payload)`` batches of ``batch_size`` samples of ``data`` on
    ``device``: every pass a new random order (torch's global generator), the last
    incomplete batch of a pass dropped. ``data`` must hold at least one batch."""
    from cl_runner.data.sampling import GroupBatchSampler

    plan = GroupBatchSampler([len(data)], [batch_size], never_ending=True, shuffle=True,
                             drop_last=True, device=data.device)
    for positions in plan:
        x, y, t = data.gather(positions)
        payload = data.gather_payload(positions)
        yield (x.to(device, non_blocking=True), y.to(device, non_blocking=True),
               t.to(device, non_blocking=True),
               {k: v.to(device, non_blocking=True) for k, v in payload.items()})


def dataset_outputs(
    network: nn.Module, data: ClassificationDataset, batch_size: int, device: Any,
    forward: Callable[[Any, Tensor, Tensor], Tensor] = forward_with_tasks,
) -> Tensor:
    """``forward(network, x, t)`` for every sample of ``data`` (without training
    augmentation), in eval mode under ``no_grad``, as one tensor on ``device``; the network's
    train/eval mode is restored afterwards."""
    modes = {m: m.training for m in network.modules()}
    network.eval()
    data = data.eval()
    parts = []
    try:
        with torch.no_grad():
            for start in range(0, len(data), batch_size):
                stop = min(start + batch_size, len(data))
                x, _, t = data.gather(torch.arange(start, stop, device=data.device))
                parts.append(forward(network, x.to(device), t.to(device)))
    finally:
        for module, mode in modes.items():
            module.train(mode)
    if not parts:
        return torch.empty(0, device=device)
    return torch.cat(parts)
