"""Experience replay: plugins that mix the buffer into training batches, and ``Replay``.

The plugins are the ``dataloader`` config group (how a replay batch is formed); ``Replay`` is
the ``strategy=replay`` method (Naive plus one of them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cl_runner.checks import OPTIONAL_POSITIVE_INT, one_of
from cl_runner.core import SupervisedPlugin
from cl_runner.training.strategy import RunComponents, SupervisedTemplate, default_evaluator

_BALANCE = one_of(("group", "task"))


class _BufferReplay(SupervisedPlugin):
    """What every replay plugin does: own a buffer, replace the loader once the buffer holds
    data, and update the buffer after each experience. Subclasses say how batches are formed.
    """

    def __init__(self, mem_size: int, storage_policy: Any) -> None:
        super().__init__()
        self.mem_size = mem_size
        if storage_policy is None:
            from cl_runner.buffers import ExperienceBalancedBuffer

            storage_policy = ExperienceBalancedBuffer(max_size=mem_size, adaptive_size=True)
        elif storage_policy.max_size != mem_size:
            raise ValueError(
                f"mem_size={mem_size} differs from storage_policy.max_size="
                f"{storage_policy.max_size}: they must be equal"
            )
        self.storage_policy = storage_policy

    def make_loader(self, strategy: Any, loader_kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def before_training_exp(
        self, strategy: Any, num_workers: int = 0, shuffle: bool = True,
        drop_last: bool = False, **kwargs: Any,
    ) -> None:
        if len(self.storage_policy.buffer) == 0:
            return  # first experience: the strategy's default loader
        loader_kwargs = {"num_workers": num_workers, "shuffle": shuffle, "drop_last": drop_last}
        strategy.dataloader = self.make_loader(strategy, loader_kwargs)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.storage_policy.update(strategy, **kwargs)

    def state_dict(self) -> dict[str, Any]:
        return {"storage_policy": self.storage_policy.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.storage_policy.load_state_dict(state["storage_policy"])


class ReplayPlugin(_BufferReplay):
    """Experience replay (Avalanche's ReplayPlugin, same arguments and defaults).

    From the second experience on, each mini-batch holds ``batch_size`` current samples and
    ``batch_size_mem`` buffer samples (both default to ``train_mb_size``); the buffer cycles.
    The epoch length is set by the current data. The buffer is updated after each experience;
    without ``storage_policy`` it is an ``ExperienceBalancedBuffer(mem_size)``.
    """

    def __init__(
        self,
        mem_size: int = 200,
        batch_size: int | None = None,
        batch_size_mem: int | None = None,
        task_balanced_dataloader: bool = False,
        storage_policy: Any = None,
    ) -> None:
        self.check_args(batch_size=batch_size, batch_size_mem=batch_size_mem)
        super().__init__(mem_size, storage_policy)
        self.batch_size = batch_size
        self.batch_size_mem = batch_size_mem
        self.task_balanced_dataloader = task_balanced_dataloader

    @classmethod
    def check_args(cls, batch_size: Any = None, batch_size_mem: Any = None, **_: Any) -> None:
        OPTIONAL_POSITIVE_INT("batch_size", batch_size)
        OPTIONAL_POSITIVE_INT("batch_size_mem", batch_size_mem)

    def make_loader(self, strategy: Any, loader_kwargs: dict[str, Any]) -> Any:
        from cl_runner.data.loaders import ReplayDataLoader

        return ReplayDataLoader(
            strategy.adapted_dataset,
            self.storage_policy.buffer,
            oversample_small_tasks=True,
            batch_size=self.batch_size or strategy.train_mb_size,
            batch_size_mem=self.batch_size_mem or strategy.train_mb_size,
            task_balanced_dataloader=self.task_balanced_dataloader,
            **loader_kwargs,
        )


class BalancedReplayPlugin(_BufferReplay):
    """Replay whose mini-batches are balanced over groups instead of data vs memory.

    ``balance="group"``: the current experience and every buffer group (class, task or
    experience, as the buffer groups) each get an equal share of ``batch_size``.
    ``balance="task"``: current data and buffer are pooled and balanced over task labels.
    Small groups are oversampled; the epoch ends with the largest group (the current data in
    a normal run).
    """

    def __init__(
        self,
        mem_size: int = 200,
        batch_size: int | None = None,
        balance: str = "group",
        storage_policy: Any = None,
    ) -> None:
        self.check_args(batch_size=batch_size, balance=balance)
        super().__init__(mem_size, storage_policy)
        self.batch_size = batch_size
        self.balance = balance

    @classmethod
    def check_args(cls, batch_size: Any = None, balance: Any = "group", **_: Any) -> None:
        OPTIONAL_POSITIVE_INT("batch_size", batch_size)
        _BALANCE("balance", balance)

    def _groups(self) -> list[Any]:
        groups = getattr(self.storage_policy, "buffer_datasets", None)
        return [g for g in groups if len(g)] if groups is not None else [self.storage_policy.buffer]

    def make_loader(self, strategy: Any, loader_kwargs: dict[str, Any]) -> Any:
        from cl_runner.data.loaders import GroupBalancedDataLoader, TaskBalancedDataLoader

        batch_size = self.batch_size or strategy.train_mb_size
        if self.balance == "task":
            pooled = strategy.adapted_dataset.concat(self.storage_policy.buffer)
            return TaskBalancedDataLoader(
                pooled, oversample_small_groups=True, batch_size=batch_size, **loader_kwargs
            )
        return GroupBalancedDataLoader(
            [strategy.adapted_dataset, *self._groups()], oversample_small_groups=True,
            batch_size=batch_size, **loader_kwargs,
        )


class Replay(SupervisedTemplate):
    """Naive plus a replay plugin (Avalanche's ``Replay``): experience replay from a buffer.

    Without ``replay_plugin`` it adds ``ReplayPlugin(mem_size, storage_policy=...)`` (an
    ``ExperienceBalancedBuffer`` when no storage policy is given); ``mem_size=0`` trains
    without memory. ``cl-run`` passes the ``dataloader`` group's plugin over the ``buffer``.
    """

    short_name = ""  # run names start with the buffer, as before methods were selectable
    takes_memory = True
    uses_dataloader = True

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
        replay_plugin: SupervisedPlugin | None = None,
    ) -> None:
        if replay_plugin is None and mem_size:
            replay_plugin = ReplayPlugin(mem_size, storage_policy=storage_policy)
        extra = [replay_plugin] if replay_plugin is not None else []
        super().__init__(model, optimizer, criterion, train_mb_size, train_epochs, eval_mb_size,
                         device, [*(plugins or []), *extra], evaluator, eval_every, peval_mode)

    @classmethod
    def check_buffer(cls, buffer: type | None, args: Mapping[str, Any]) -> None:
        """Any storage policy works; ``buffer=none`` is fine-tuning."""

    @classmethod
    def from_run(cls, parts: RunComponents, **args: Any) -> Replay:
        buffer = parts.buffer
        plugin = None
        if buffer is not None:
            plugin = parts.replay_plugin(mem_size=buffer.max_size, storage_policy=buffer)
        return cls(model=parts.model, optimizer=parts.optimizer, device=parts.device,
                   plugins=parts.plugins, evaluator=parts.evaluator, replay_plugin=plugin,
                   mem_size=buffer.max_size if buffer is not None else 0, **args)
