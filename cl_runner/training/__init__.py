"""Strategies (Avalanche's names and arguments) and the replay plugins.

Importing this package loads no torch, so ``cl-run`` can read the strategies' declarations
before any data is loaded.
"""

from cl_runner.core import CALLBACKS, BasePlugin, StrategyPlugin, SupervisedPlugin
from cl_runner.training.clock import Clock
from cl_runner.training.replay import BalancedReplayPlugin, Replay, ReplayPlugin
from cl_runner.training.strategy import (
    Naive,
    RunComponents,
    SupervisedTemplate,
    default_evaluator,
)

__all__ = [
    "CALLBACKS",
    "BalancedReplayPlugin",
    "BasePlugin",
    "Clock",
    "Naive",
    "Replay",
    "ReplayPlugin",
    "RunComponents",
    "StrategyPlugin",
    "SupervisedPlugin",
    "SupervisedTemplate",
    "default_evaluator",
]
