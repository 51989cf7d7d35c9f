"""The plugin protocol (Avalanche's ``avalanche.core``): every callback a strategy fires.

Training and evaluation both build on this module and on nothing of each other's. A plugin
overrides the callbacks it needs; the dispatcher calls each event only on the plugins that
override it. A public method whose name looks like a callback but is not one (a typo such as
``after_trainig_exp``) would never be called, so defining it warns at class creation.
"""

from __future__ import annotations

import difflib
import functools
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cl_runner.training.strategy import SupervisedTemplate

TRAINING_CALLBACKS = (
    "before_training",
    "before_train_dataset_adaptation",
    "after_train_dataset_adaptation",
    "before_training_exp",
    "before_training_epoch",
    "before_training_iteration",
    "before_forward",
    "after_forward",
    "before_backward",
    "after_backward",
    "before_update",
    "after_update",
    "after_training_iteration",
    "after_training_epoch",
    "after_training_exp",
    "after_training",
)
EVAL_CALLBACKS = (
    "before_eval",
    "before_eval_dataset_adaptation",
    "after_eval_dataset_adaptation",
    "before_eval_exp",
    "before_eval_iteration",
    "before_eval_forward",
    "after_eval_forward",
    "after_eval_iteration",
    "after_eval_exp",
    "after_eval",
)
CALLBACKS = TRAINING_CALLBACKS + EVAL_CALLBACKS
_CALLBACK_PREFIXES = ("before_", "after_")


class CallbackNameWarning(UserWarning):
    """A plugin method named like a callback that no strategy will ever call."""


class BasePlugin:
    """Base of every plugin: one no-op method per callback; override the ones you need.

    Each callback receives the strategy and the keyword arguments given to
    ``strategy.train(...)`` / ``strategy.eval(...)``.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in vars(cls):
            if name.startswith(_CALLBACK_PREFIXES) and name not in CALLBACKS:
                close = difflib.get_close_matches(name, CALLBACKS, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                warnings.warn(
                    f"{cls.__qualname__}.{name} is not a strategy callback and will never be "
                    f"called{hint}", CallbackNameWarning, stacklevel=2,
                )

    def before_training(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """Start of ``train()``."""

    def before_train_dataset_adaptation(
        self, strategy: SupervisedTemplate, **kwargs: Any
    ) -> None:
        """Before ``strategy.adapted_dataset`` is made from the experience."""

    def after_train_dataset_adaptation(
        self, strategy: SupervisedTemplate, **kwargs: Any
    ) -> None:
        """``strategy.adapted_dataset`` is set; the loader is made next."""

    def before_training_exp(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """The train loader exists; the first epoch starts next."""

    def before_training_epoch(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """Start of an epoch."""

    def before_training_iteration(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """``strategy.mbatch`` holds the new mini-batch."""

    def before_forward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """Gradients are zeroed; the forward pass comes next."""

    def after_forward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """``strategy.mb_output`` is set."""

    def before_backward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """``strategy.loss`` is set; plugins may add terms to it."""

    def after_backward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """Gradients are computed; plugins may change them."""

    def before_update(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """The optimizer step comes next."""

    def after_update(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """The optimizer step is done."""

    def after_training_iteration(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """End of a training step."""

    def after_training_epoch(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """End of an epoch."""

    def after_training_exp(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """End of training on an experience (buffers are updated here)."""

    def after_training(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """End of ``train()``."""

    def before_eval(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """Start of ``eval()``; ``strategy.current_eval_stream`` is set."""

    def before_eval_dataset_adaptation(
        self, strategy: SupervisedTemplate, **kwargs: Any
    ) -> None:
        """Before the evaluation dataset is made from the experience."""

    def after_eval_dataset_adaptation(
        self, strategy: SupervisedTemplate, **kwargs: Any
    ) -> None:
        """The evaluation dataset is set."""

    def before_eval_exp(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """Start of the evaluation of one experience."""

    def before_eval_iteration(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """``strategy.mbatch`` holds the evaluation mini-batch."""

    def before_eval_forward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """The evaluation forward pass comes next."""

    def after_eval_forward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """``strategy.mb_output`` holds the evaluation outputs."""

    def after_eval_iteration(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """End of an evaluation step (``strategy.loss`` is set)."""

    def after_eval_exp(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """End of the evaluation of one experience."""

    def after_eval(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """End of ``eval()``."""


class SupervisedPlugin(BasePlugin):
    """Plugin of supervised strategies (Avalanche's name; same callbacks)."""


StrategyPlugin = SupervisedPlugin  # the seed tutorial's (older Avalanche) name


def implemented_callbacks(plugin: object) -> set[str]:
    """The callbacks ``plugin``'s class overrides (not ``BasePlugin``'s no-op)."""
    names = set()
    for name in CALLBACKS:
        method = getattr(type(plugin), name, None)
        if method is not None and method is not getattr(BasePlugin, name, None):
            names.add(name)
    return names


def listeners(plugin: object, event: str) -> list[Callable[..., None]]:
    """What the dispatcher calls on ``plugin`` for ``event``.

    A plugin's overridden callback method; and, for a plugin that reacts to many events
    through one method (the EvaluationPlugin), ``handle(event, ...)`` when ``event`` is among
    its ``handled_events()``.
    """
    calls = [getattr(plugin, event)] if event in implemented_callbacks(plugin) else []
    handled = getattr(plugin, "handled_events", None)
    if callable(handled) and event in handled():
        calls.append(functools.partial(plugin.handle, event))  # type: ignore[attr-defined]
    return calls


class CallbackDispatcher:
    """Calls each event on the plugins that listen to it, in plugin order.

    The per-event lists are computed once, so an event nobody listens to costs one
    dictionary lookup in the training loop.
    """

    def __init__(self, plugins: list[object]) -> None:
        self.plugins = plugins
        self._listeners = {
            name: [call for p in plugins for call in listeners(p, name)] for name in CALLBACKS
        }

    def __call__(self, event: str, strategy: Any, **kwargs: Any) -> None:
        for callback in self._listeners[event]:
            callback(strategy, **kwargs)
