"""Strategies (Avalanche's names and arguments) and the replay plugins.

Importing this package loads no torch, so ``cl-run`` can read the strategies' declarations
before any data is loaded.
"""

from cl_runner.core import CALLBACKS, BasePlugin, StrategyPlugin, SupervisedPlugin
from cl_runner.training.agem import AGEM, AGEMPlugin, PatternsPerExperienceBuffer
from cl_runner.training.bic import BiC, BiCPlugin
from cl_runner.training.clock import Clock
from cl_runner.training.der import DER, DERpp
from cl_runner.training.er_ace import ER_ACE
from cl_runner.training.gdumb import GDumb, GDumbPlugin
from cl_runner.training.gss import GSS_greedy as GSS_greedy
from cl_runner.training.gss import GSS_greedyPlugin as GSS_greedyPlugin
from cl_runner.training.icarl import ICaRL, ICaRLHerdingSelectionStrategy
from cl_runner.training.mir import MIR as MIR
from cl_runner.training.mir import MIRPlugin as MIRPlugin
from cl_runner.training.online import OnlineNaive as OnlineNaive
from cl_runner.training.replay import BalancedReplayPlugin, Replay, ReplayPlugin
from cl_runner.training.scr import SCR as SCR
from cl_runner.training.strategy import (
    Naive,
    RunComponents,
    SupervisedTemplate,
    default_evaluator,
)
from cl_runner.training.strategy import PeriodicEval as PeriodicEval

__all__ = [
    "AGEM",
    "CALLBACKS",
    "DER",
    "ER_ACE",
    "AGEMPlugin",
    "BalancedReplayPlugin",
    "BasePlugin",
    "BiC",
    "BiCPlugin",
    "Clock",
    "DERpp",
    "GDumb",
    "GDumbPlugin",
    "ICaRL",
    "ICaRLHerdingSelectionStrategy",
    "Naive",
    "PatternsPerExperienceBuffer",
    "Replay",
    "ReplayPlugin",
    "RunComponents",
    "StrategyPlugin",
    "SupervisedPlugin",
    "SupervisedTemplate",
    "default_evaluator",
]
