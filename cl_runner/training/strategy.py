"""Strategy template: Avalanche's train/eval loops and callback sequence, on tensor batches.

A strategy class also declares what ``cl-run`` needs to know, so that a new method is one
module plus one config file:

- ``short_name``: the word its run names start with ("" for the default, replay);
- ``check_args``: its constructor's own argument checks (run before any data is loaded);
- ``takes_memory`` / ``check_buffer``: whether it uses the ``buffer`` group, and which
  storage policies make sense for it;
- ``uses_dataloader``: whether the ``dataloader`` group (how replay batches are formed)
  applies to it;
- ``from_run``: how to build it from the objects the runner made of the other groups;
- ``state_dict`` / ``load_state_dict``: everything a checkpoint must restore.

This module imports torch lazily so the runner can read those declarations without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import lazy_loader as lazy

from cl_runner.checks import INT, NON_NEGATIVE_INT, POSITIVE_INT, SettingError, one_of
from cl_runner.core import CallbackDispatcher, SupervisedPlugin
from cl_runner.models.tasks import forward_with_tasks
from cl_runner.training.clock import Clock

if TYPE_CHECKING:
    from torch import Tensor, nn

    from cl_runner.benchmarks.base import Experience
    from cl_runner.benchmarks.info import StreamInfo

torch = lazy.load("torch")


class _DefaultEvaluator:
    """Marker for 'build Avalanche's default evaluator' (accuracy + loss, printed)."""


default_evaluator = _DefaultEvaluator()

PEVAL_MODES = ("experience", "epoch", "iteration")
_PEVAL_MODE = one_of(PEVAL_MODES)


class PeriodicEval(SupervisedPlugin):
    """Evaluation during training (Avalanche's ``PeriodicEval``; added by the strategy when
    ``eval_every > -1``, just before the Clock, so it reads the counters before they advance).

    ``eval_every=0``: at the start of every ``train()`` call and after every experience.
    ``eval_every=k>0``: also after every k-th epoch (``peval_mode="epoch"``: after epochs 1,
    k+1, 2k+1, ...) or iteration (``"iteration"``); the evaluation after the experience is
    skipped in epoch mode when the last epoch was just evaluated. ``"experience"`` behaves like
    ``eval_every=0``, as in Avalanche. Each evaluation calls ``strategy.eval`` once per
    stream of ``strategy._eval_streams`` (``train(..., eval_streams=...)``).
    """

    def __init__(self, eval_every: int = -1, peval_mode: str = "epoch",
                 do_initial: bool = True) -> None:
        _PEVAL_MODE("peval_mode", peval_mode)
        self.eval_every = eval_every
        self.peval_mode = peval_mode
        self.do_initial = do_initial and eval_every > -1
        self.do_final = False

    def _peval(self, strategy: Any, **kwargs: Any) -> None:
        for group in strategy._eval_streams or ():
            strategy.eval(group, **kwargs)

    def before_training(self, strategy: Any, **kwargs: Any) -> None:
        if self.do_initial:
            self._peval(strategy, **kwargs)

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        skip = (self.peval_mode == "epoch" and self.eval_every > 0
                and (strategy.train_epochs - 1) % self.eval_every == 0)
        self.do_final = self.eval_every > -1 and not skip

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        k = self.eval_every
        if self.peval_mode == "epoch" and k > 0 and strategy.clock.train_exp_epochs % k == 0:
            self._peval(strategy, **kwargs)

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        k = self.eval_every
        if (self.peval_mode == "iteration" and k > 0
                and strategy.clock.train_exp_iterations % k == 0):
            self._peval(strategy, **kwargs)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if self.do_final:
            self._peval(strategy, **kwargs)


def group_by_stream(eval_streams: Iterable[Any]) -> list[list[Any]]:
    """Experiences of ``eval_streams`` (streams or single experiences) grouped by the name
    of their origin stream, in first-seen order (Avalanche's grouping for periodic eval)."""
    groups: dict[str, list[Any]] = {}
    for item in eval_streams:
        for exp in (item if isinstance(item, Iterable) else [item]):
            origin = exp.origin_stream
            groups.setdefault(getattr(origin, "name", origin), []).append(exp)
    return list(groups.values())


@dataclass
class RunComponents:
    """What the runner built from the config groups other than ``strategy``.

    ``replay_plugin(mem_size, storage_policy)`` makes the ``dataloader`` group's plugin;
    ``plugins`` are the runner's own (progress, statistics, divergence guard).
    """

    model: Any
    optimizer: Any
    device: Any
    stream: StreamInfo
    buffer: Any = None
    replay_plugin: Any = None
    plugins: list[Any] = field(default_factory=list)
    evaluator: Any = None


class DeferredLoader:
    """A loader made on first use: iterating, ``len()`` or any attribute builds it with
    ``make(*args)`` and forwards to it."""

    __slots__ = ("_args", "_loader", "_make")

    def __init__(self, make: Any, *args: Any) -> None:
        self._make, self._args, self._loader = make, args, None

    @property
    def loader(self) -> Any:
        if self._loader is None:
            self._loader = self._make(*self._args)
        return self._loader

    def __iter__(self) -> Any:
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class SupervisedTemplate:
    """Mini-batch training of ``model`` on one experience at a time, with plugins.

    State plugins read: ``model``, ``optimizer``, ``device``, ``experience``,
    ``adapted_dataset``, ``dataloader``, ``mbatch``, ``mb_x``, ``mb_y``, ``mb_task_id``,
    ``mb_output``, ``loss``, ``train_mb_size``, ``eval_mb_size``, ``clock``, ``is_training``.
    ``loss_terms`` (name -> scalar tensor, reset every step) holds the parts of the loss a
    method wants reported; the runner logs their means as ``train/loss_<name>``.
    """

    short_name: ClassVar[str] = "strategy"
    takes_memory: ClassVar[bool] = False
    uses_dataloader: ClassVar[bool] = False

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
        eval_every: int = -1,
        peval_mode: str = "epoch",
    ) -> None:
        SupervisedTemplate.check_args(train_mb_size=train_mb_size, train_epochs=train_epochs,
                                      eval_mb_size=eval_mb_size, eval_every=eval_every,
                                      peval_mode=peval_mode)
        from cl_runner.evaluation.plugin import EvaluationPlugin, make_default_evaluator

        self.model = model
        self.optimizer = optimizer
        self._optimized_params = list(model.parameters())
        self._criterion = criterion if criterion is not None else torch.nn.CrossEntropyLoss()
        self.train_mb_size = train_mb_size
        self.train_epochs = train_epochs
        self.eval_mb_size = eval_mb_size if eval_mb_size is not None else train_mb_size
        self.device = torch.device(device if device is not None else "cpu")
        if evaluator is default_evaluator:
            evaluator = make_default_evaluator()
        self.evaluator = evaluator if evaluator is not None else EvaluationPlugin()
        self.clock = Clock()
        self.eval_every, self.peval_mode = eval_every, peval_mode
        # Avalanche always adds PeriodicEval; without periodic evaluation it does nothing, so
        # it is left out (no dispatch cost, and checkpoints keep their plugin list)
        periodic = [PeriodicEval(eval_every, peval_mode)] if eval_every > -1 else []
        self.plugins = [*(plugins or []), self.evaluator, *periodic, self.clock]
        self._dispatch = CallbackDispatcher(self.plugins)
        self.experience: Experience | None = None
        self.adapted_dataset = None
        self.dataloader: Iterable | None = None
        self.mbatch: list[Tensor] | None = None
        self.mb_output: Tensor | None = None
        self.loss: Tensor | None = None
        self.loss_terms: dict[str, Tensor] = {}
        self.is_training = False
        self.current_eval_stream: Sequence[Experience] | None = None
        self._eval_streams: list[list[Experience]] | None = None
        self._stop_training = False

    # -- declarations (no instance, no torch) ------------------------------------------------
    @classmethod
    def check_args(
        cls, train_mb_size: Any = 1, train_epochs: Any = 1, eval_mb_size: Any = None,
        eval_every: Any = -1, peval_mode: Any = "epoch", **args: Any,
    ) -> None:
        """Raise ``SettingError`` for an argument the constructor refuses."""
        POSITIVE_INT("train_mb_size", train_mb_size)
        NON_NEGATIVE_INT("train_epochs", train_epochs)
        if eval_mb_size is not None:
            POSITIVE_INT("eval_mb_size", eval_mb_size)
        if not INT.test(eval_every) or eval_every < -1:
            raise SettingError("eval_every", eval_every,
                               "-1 (never), 0 (after each experience) or a positive integer")
        _PEVAL_MODE("peval_mode", peval_mode)

    @classmethod
    def check_buffer(cls, buffer: type | None, args: Mapping[str, Any]) -> None:
        """Raise ``SettingError`` (naming ``buffer``) for a storage policy the method cannot
        use; ``buffer`` is None for ``buffer=none``."""
        if buffer is not None and not cls.takes_memory:
            raise SettingError("buffer", buffer.short_name,
                               f"none: strategy={cls.short_name} keeps no memory "
                               "(strategy=replay replays from a buffer)")

    @classmethod
    def check_stream(cls, args: Mapping[str, Any], stream: StreamInfo) -> None:
        """Raise ``SettingError`` for a setting the benchmark's stream cannot work with."""

    @classmethod
    def from_run(cls, parts: RunComponents, **args: Any) -> SupervisedTemplate:
        """The strategy built from the runner's components and the config's ``args``."""
        return cls(model=parts.model, optimizer=parts.optimizer, device=parts.device,
                   plugins=parts.plugins, evaluator=parts.evaluator, **args)

    # -- mini-batch views ------------------------------------------------------------------
    @property
    def mb_x(self) -> Tensor:
        return self.mbatch[0]

    @property
    def mb_y(self) -> Tensor:
        return self.mbatch[1]

    @property
    def mb_task_id(self) -> Tensor:
        return self.mbatch[2]

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
        self, experiences: Experience | Iterable[Experience],
        eval_streams: Sequence[Any] | None = None, **kwargs: Any,
    ) -> dict[str, float]:
        """Train on one experience or several in turn; returns the evaluator's last metrics.

        ``eval_streams``: what periodic evaluation (``eval_every > -1``) evaluates, grouped
        by stream name, one ``eval`` call per stream; None means the experiences trained on,
        ``[]`` nothing. ``kwargs`` (e.g. ``num_workers``, ``shuffle``) reach the train loader
        and every plugin callback.
        """
        if not isinstance(experiences, Iterable):
            experiences = [experiences]
        if self.eval_every > -1:
            if eval_streams is None:
                experiences = list(experiences)
                eval_streams = [experiences]
            self._eval_streams = group_by_stream(eval_streams)
        self.is_training = True
        self.model.train()
        self.model.to(self.device)
        self._dispatch("before_training", self, **kwargs)
        for self.experience in experiences:
            self._train_exp(**kwargs)
        self._dispatch("after_training", self, **kwargs)
        self.experience = self.adapted_dataset = self.dataloader = None
        self.mbatch = self.mb_output = None
        self._eval_streams = None
        return self.evaluator.get_last_metrics()

    def _train_exp(self, **kwargs: Any) -> None:
        self._dispatch("before_train_dataset_adaptation", self, **kwargs)
        self.adapted_dataset = self.experience.dataset.train()
        self._dispatch("after_train_dataset_adaptation", self, **kwargs)
        self.make_train_dataloader(**kwargs)
        self.check_model_and_optimizer()
        self._dispatch("before_training_exp", self, **kwargs)
        for _ in range(self.train_epochs):
            self._dispatch("before_training_epoch", self, **kwargs)
            if self._stop_training:
                self._stop_training = False
                break
            self.training_epoch(**kwargs)
            self._dispatch("after_training_epoch", self, **kwargs)
        self._dispatch("after_training_exp", self, **kwargs)

    def model_adaptation(self, model: nn.Module | None = None) -> nn.Module:
        """Avalanche's dynamic modules: every submodule with an ``adaptation(experience)``
        method (``MultiHeadClassifier``) grows its heads or masks for the current experience."""
        given, model = model is not None, self.model if model is None else model
        adapted = False
        for module in list(model.modules()):
            adapt = getattr(module, "adaptation", None)
            if callable(adapt):
                adapt(self.experience)
                adapted = True
        # train() and eval() put the strategy's model on the device; only a model passed in,
        # or one that adapted (new heads), needs moving here: this runs for every chunk online
        return model.to(self.device) if given or adapted else model

    def check_model_and_optimizer(self) -> None:
        """Model adaptation, then the optimizer follows the parameters that appeared or were
        replaced since the last training experience (Avalanche's ``update_optimizer``): new
        ones join the first parameter group, replaced ones leave it with their state."""
        self.model = self.model_adaptation()
        params = list(self.model.parameters())
        if len(params) == len(self._optimized_params) and all(
                p is q for p, q in zip(params, self._optimized_params, strict=True)):
            return
        now, before = {id(p) for p in params}, {id(p) for p in self._optimized_params}
        if now != before:
            gone = before - now
            in_optimizer = set()
            for group in self.optimizer.param_groups:
                for p in group["params"]:
                    if id(p) in gone:
                        self.optimizer.state.pop(p, None)
                group["params"] = [p for p in group["params"] if id(p) not in gone]
                in_optimizer.update(id(p) for p in group["params"])
            self.optimizer.param_groups[0]["params"].extend(
                p for p in params if id(p) not in before and id(p) not in in_optimizer)
        self._optimized_params = params

    def make_train_dataloader(
        self, num_workers: int = 0, shuffle: bool = True, drop_last: bool = False, **kwargs: Any
    ) -> None:
        """Default loader: task-balanced when the experience mixes tasks, else plain.

        It is made when first used (iterated, measured or inspected): a replay plugin that
        replaces it in ``before_training_exp`` - every small experience of an online stream -
        pays nothing for it.
        """
        loader_kwargs = {"num_workers": num_workers, "shuffle": shuffle, "drop_last": drop_last}
        self.dataloader = DeferredLoader(self._default_loader, self.adapted_dataset,
                                         self.train_mb_size, loader_kwargs)

    @staticmethod
    def _default_loader(data: Any, batch_size: int, loader_kwargs: dict[str, Any]) -> Any:
        from cl_runner.data.loaders import TaskBalancedDataLoader, TensorDataLoader

        if len(data.targets_task_labels.unique()) > 1:
            return TaskBalancedDataLoader(data, oversample_small_groups=True,
                                          batch_size=batch_size, **loader_kwargs)
        return TensorDataLoader(data, batch_size=batch_size, **loader_kwargs)

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
            self.loss_terms = {}
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
    def eval(
        self, exp_list: Experience | Iterable[Experience], **kwargs: Any
    ) -> dict[str, float]:
        """Evaluate on one experience or a stream; training state is restored afterwards."""
        if not isinstance(exp_list, Iterable):
            exp_list = [exp_list]
        exp_list = list(exp_list)
        saved = (self.experience, self.adapted_dataset, self.dataloader, self.is_training,
                 self.mbatch, self.mb_output, self.loss)
        modes = {m: m.training for m in self.model.modules()}
        self.is_training = False
        self.model.eval()
        self.model.to(self.device)
        self.current_eval_stream = exp_list
        with torch.no_grad():
            self._dispatch("before_eval", self, **kwargs)
            for self.experience in exp_list:
                self._eval_exp(**kwargs)
            self._dispatch("after_eval", self, **kwargs)
        (self.experience, self.adapted_dataset, self.dataloader, self.is_training,
         self.mbatch, self.mb_output, self.loss) = saved
        for module, mode in modes.items():
            module.train(mode)
        return self.evaluator.get_last_metrics()

    def _eval_exp(self, **kwargs: Any) -> None:
        from cl_runner.data.loaders import TensorDataLoader

        self._dispatch("before_eval_dataset_adaptation", self, **kwargs)
        self.adapted_dataset = self.experience.dataset.eval()
        self._dispatch("after_eval_dataset_adaptation", self, **kwargs)
        self.dataloader = TensorDataLoader(self.adapted_dataset, batch_size=self.eval_mb_size)
        self.model = self.model_adaptation()
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

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Model, optimizer, clock and every plugin's state (None for stateless plugins)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "plugins": [p.state_dict() if hasattr(p, "state_dict") else None
                        for p in self.plugins],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore ``state_dict()`` output into a strategy built from the same config."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if len(state["plugins"]) != len(self.plugins):
            raise ValueError(f"the state has {len(state['plugins'])} plugins, the strategy "
                             f"{len(self.plugins)}")
        for plugin, plugin_state in zip(self.plugins, state["plugins"], strict=True):
            if plugin_state is not None:
                plugin.load_state_dict(plugin_state)


class Naive(SupervisedTemplate):
    """Plain fine-tuning: the lower bound every rehearsal method is compared with."""

    short_name = "naive"
