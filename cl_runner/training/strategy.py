"""Strategy template: Avalanche's train/eval loops and callback sequence, on tensor batches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from cl_runner.benchmarks.base import Experience
from cl_runner.models import forward_with_tasks
from cl_runner.training.allocator import keep_freed_memory
from cl_runner.training.clock import Clock
from cl_runner.training.plugins import CallbackDispatcher


class _DefaultEvaluator:
    """Marker for 'build Avalanche's default evaluator' (accuracy + loss, printed)."""


default_evaluator = _DefaultEvaluator()


class SupervisedTemplate:
    """Mini-batch training of ``model`` on one experience at a time, with plugins.

    State plugins read: ``model``, ``optimizer``, ``device``, ``experience``,
    ``adapted_dataset``, ``dataloader``, ``mbatch``, ``mb_x``, ``mb_y``, ``mb_task_id``,
    ``mb_output``, ``loss``, ``train_mb_size``, ``eval_mb_size``, ``clock``, ``is_training``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: nn.Module | None = None,
        train_mb_size: int = 1,
        train_epochs: int = 1,
        eval_mb_size: int | None = None,
        device: str | torch.device | None = None,
        plugins: Sequence[object] | None = None,
        evaluator: object | None = default_evaluator,
    ) -> None:
        from cl_runner.evaluation.plugin import EvaluationPlugin, make_default_evaluator

        self.model = model
        self.optimizer = optimizer
        self._criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
        self.train_mb_size = train_mb_size
        self.train_epochs = train_epochs
        self.eval_mb_size = eval_mb_size if eval_mb_size is not None else train_mb_size
        self.device = torch.device(device if device is not None else "cpu")
        if evaluator is default_evaluator:
            evaluator = make_default_evaluator()
        self.evaluator = evaluator if evaluator is not None else EvaluationPlugin()
        self.clock = Clock()
        self.plugins = [*(plugins or []), self.evaluator, self.clock]
        self._dispatch = CallbackDispatcher(self.plugins)
        self.experience: Experience | None = None
        self.adapted_dataset = None
        self.dataloader: Iterable | None = None
        self.mbatch: list[Tensor] | None = None
        self.mb_output: Tensor | None = None
        self.loss: Tensor | None = None
        self.is_training = False
        self.current_eval_stream: Sequence[Experience] | None = None
        self._stop_training = False
        keep_freed_memory()

    # -- mini-batch views ------------------------------------------------------------------
    @property
    def mb_x(self) -> Tensor:
        return self.mbatch[0]

    @property
    def mb_y(self) -> Tensor:
        return self.mbatch[1]

    @property
    def mb_task_id(self) -> Tensor:
        return self.mbatch[-1]

    @property
    def is_eval(self) -> bool:
        return not self.is_training

    def criterion(self) -> Tensor:
        return self._criterion(self.mb_output, self.mb_y)

    def forward(self) -> Tensor:
        return forward_with_tasks(self.model, self.mb_x, self.mb_task_id)

    def stop_training(self) -> None:
        """Ask the loop to end the current experience after this iteration."""
        self._stop_training = True

    # -- training --------------------------------------------------------------------------
    def train(
        self, experiences: Experience | Iterable[Experience], **kwargs: Any
    ) -> dict[str, float]:
        """Train on one experience or several in turn; returns the evaluator's last metrics.

        ``kwargs`` (e.g. ``num_workers``, ``shuffle``) reach the train loader and every
        plugin callback.
        """
        if isinstance(experiences, Experience):
            experiences = [experiences]
        self.is_training = True
        self.model.train()
        self.model.to(self.device)
        self._dispatch("before_training", self, **kwargs)
        for self.experience in experiences:
            self._train_exp(**kwargs)
        self._dispatch("after_training", self, **kwargs)
        self.experience = self.adapted_dataset = self.dataloader = None
        self.mbatch = self.mb_output = None
        return self.evaluator.get_last_metrics()

    def _train_exp(self, **kwargs: Any) -> None:
        self._dispatch("before_train_dataset_adaptation", self, **kwargs)
        self.adapted_dataset = self.experience.dataset.train()
        self._dispatch("after_train_dataset_adaptation", self, **kwargs)
        self.make_train_dataloader(**kwargs)
        self._dispatch("before_training_exp", self, **kwargs)
        for _ in range(self.train_epochs):
            self._dispatch("before_training_epoch", self, **kwargs)
            if self._stop_training:
                self._stop_training = False
                break
            self.training_epoch(**kwargs)
            self._dispatch("after_training_epoch", self, **kwargs)
        self._dispatch("after_training_exp", self, **kwargs)

    def make_train_dataloader(
        self, num_workers: int = 0, shuffle: bool = True, drop_last: bool = False, **kwargs: Any
    ) -> None:
        """Default loader: task-balanced when the experience mixes tasks, else plain."""
        from cl_runner.data.loaders import TaskBalancedDataLoader, TensorDataLoader

        loader_kwargs = {"num_workers": num_workers, "shuffle": shuffle, "drop_last": drop_last}
        if len(self.adapted_dataset.targets_task_labels.unique()) > 1:
            self.dataloader = TaskBalancedDataLoader(
                self.adapted_dataset, oversample_small_groups=True,
                batch_size=self.train_mb_size, **loader_kwargs,
            )
        else:
            self.dataloader = TensorDataLoader(
                self.adapted_dataset, batch_size=self.train_mb_size, **loader_kwargs
            )

    def _to_device(self, batch: Sequence[Tensor]) -> list[Tensor]:
        return [t if t.device == self.device else t.to(self.device, non_blocking=True)
                for t in batch]

    def training_epoch(self, **kwargs: Any) -> None:
        """One pass over ``self.dataloader`` with the full callback sequence per step."""
        dispatch = self._dispatch
        for batch in self.dataloader:
            if self._stop_training:
                break
            self.mbatch = self._to_device(batch)
            dispatch("before_training_iteration", self, **kwargs)
            self.optimizer.zero_grad(set_to_none=True)
            dispatch("before_forward", self, **kwargs)
            self.mb_output = self.forward()
            dispatch("after_forward", self, **kwargs)
            self.loss = self.criterion()
            dispatch("before_backward", self, **kwargs)
            self.loss.backward()
            dispatch("after_backward", self, **kwargs)
            dispatch("before_update", self, **kwargs)
            self.optimizer.step()
            dispatch("after_update", self, **kwargs)
            dispatch("after_training_iteration", self, **kwargs)

    # -- evaluation ------------------------------------------------------------------------
    @torch.no_grad()
    def eval(
        self, exp_list: Experience | Iterable[Experience], **kwargs: Any
    ) -> dict[str, float]:
        """Evaluate on one experience or a stream; training state is restored afterwards."""
        if isinstance(exp_list, Experience):
            exp_list = [exp_list]
        exp_list = list(exp_list)
        saved = (self.experience, self.adapted_dataset, self.dataloader, self.is_training)
        modes = {m: m.training for m in self.model.modules()}
        self.is_training = False
        self.model.eval()
        self.model.to(self.device)
        self.current_eval_stream = exp_list
        self._dispatch("before_eval", self, **kwargs)
        for self.experience in exp_list:
            self._eval_exp(**kwargs)
        self._dispatch("after_eval", self, **kwargs)
        self.experience, self.adapted_dataset, self.dataloader, self.is_training = saved
        for module, mode in modes.items():
            module.train(mode)
        return self.evaluator.get_last_metrics()

    def _eval_exp(self, **kwargs: Any) -> None:
        from cl_runner.data.loaders import TensorDataLoader

        self._dispatch("before_eval_dataset_adaptation", self, **kwargs)
        self.adapted_dataset = self.experience.dataset.eval()
        self._dispatch("after_eval_dataset_adaptation", self, **kwargs)
        self.dataloader = TensorDataLoader(self.adapted_dataset, batch_size=self.eval_mb_size)
        self._dispatch("before_eval_exp", self, **kwargs)
        dispatch = self._dispatch
        for batch in self.dataloader:
            self.mbatch = self._to_device(batch)
            dispatch("before_eval_iteration", self, **kwargs)
            dispatch("before_eval_forward", self, **kwargs)
            self.mb_output = self.forward()
            dispatch("after_eval_forward", self, **kwargs)
            self.loss = self.criterion()
            dispatch("after_eval_iteration", self, **kwargs)
        self._dispatch("after_eval_exp", self, **kwargs)


class Naive(SupervisedTemplate):
    """Plain fine-tuning: the baseline every replay plugin is added to."""
