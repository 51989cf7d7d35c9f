"""Strategies, the plugin protocol and replay plugins."""

from cl_runner.training.clock import Clock
from cl_runner.training.plugins import CALLBACKS, StrategyPlugin, SupervisedPlugin
from cl_runner.training.replay import BalancedReplayPlugin, ReplayPlugin
from cl_runner.training.strategy import Naive, SupervisedTemplate, default_evaluator

__all__ = [
    "CALLBACKS",
    "BalancedReplayPlugin",
    "Clock",
    "Naive",
    "ReplayPlugin",
    "StrategyPlugin",
    "SupervisedPlugin",
    "SupervisedTemplate",
    "default_evaluator",
]
