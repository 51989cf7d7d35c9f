"""The plugin protocol: Avalanche's callback names, dispatched only to plugins that use them."""

from __future__ import annotations

from typing import Any

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


class SupervisedPlugin:
    """Base class of strategy plugins: override any callback in ``CALLBACKS``.

    Every callback receives the strategy and the keyword arguments given to
    ``strategy.train(...)`` / ``strategy.eval(...)``.
    """

    def _noop(self, strategy: Any, **kwargs: Any) -> None:
        """Default callback: do nothing."""


for _name in CALLBACKS:
    setattr(SupervisedPlugin, _name, SupervisedPlugin._noop)

StrategyPlugin = SupervisedPlugin  # the seed tutorial's (older Avalanche) name


def implemented_callbacks(plugin: object) -> set[str]:
    """The callbacks a plugin really implements (not the base class's no-op).

    A plugin whose class defines every callback but needs only some (the EvaluationPlugin,
    depending on its metrics) narrows the set with an ``active_callbacks()`` method, so the
    loop does not call it for nothing eleven times per step.
    """
    names = set()
    for name in CALLBACKS:
        method = getattr(type(plugin), name, None)
        if method is not None and method is not SupervisedPlugin._noop:
            names.add(name)
    active = getattr(plugin, "active_callbacks", None)
    return names & set(active()) if callable(active) else names


class CallbackDispatcher:
    """Calls each event on the plugins that implement it, in plugin order.

    The per-event plugin lists are computed once, so an event nobody listens to costs one
    dictionary lookup in the training loop.
    """

    def __init__(self, plugins: list[object]) -> None:
        self.plugins = plugins
        self._listeners = {
            name: [getattr(p, name) for p in plugins if name in implemented_callbacks(p)]
            for name in CALLBACKS
        }

    def __call__(self, event: str, strategy: Any, **kwargs: Any) -> None:
        for callback in self._listeners[event]:
            callback(strategy, **kwargs)
