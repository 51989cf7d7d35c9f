"""Settings of the optimizers (torch's classes) as structured configs, readable without torch.

Each dataclass is the schema of one ``conf/optimizer/`` option; ``state_per_parameter`` says
how many tensors of the parameters' size the optimizer keeps (for the memory estimate).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cl_runner.checks import (
    BOOL,
    FRACTION,
    NON_NEGATIVE_NUMBER,
    POSITIVE_NUMBER,
    Rule,
    SettingError,
    Settings,
    is_number,
    setting,
)

BETA = Rule(lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)")


@dataclass
class OptimizerSettings(Settings):
    _target_: str = ""
    _partial_: bool = True
    lr: float = setting(0.001, POSITIVE_NUMBER)
    weight_decay: float = setting(0.0, NON_NEGATIVE_NUMBER)

    def state_per_parameter(self) -> int:
        return 0


@dataclass
class AdamSettings(OptimizerSettings):
    _target_: str = "torch.optim.Adam"
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = setting(1e-8, POSITIVE_NUMBER)
    amsgrad: bool = setting(False, BOOL)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.betas) != 2:
            raise SettingError("betas", list(self.betas), "two numbers in [0, 1)")
        for beta in self.betas:
            if not BETA.test(beta):
                raise SettingError("betas", list(self.betas), "two numbers in [0, 1)")

    def state_per_parameter(self) -> int:
        return 3 if self.amsgrad else 2


@dataclass
class SGDSettings(OptimizerSettings):
    _target_: str = "torch.optim.SGD"
    lr: float = setting(0.01, POSITIVE_NUMBER)
    momentum: float = setting(0.0, FRACTION)
    dampening: float = setting(0.0, FRACTION)
    nesterov: bool = setting(False, BOOL)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise SettingError("nesterov", True, "true only with momentum > 0 and dampening 0")

    def state_per_parameter(self) -> int:
        return 1 if self.momentum else 0


SCHEMAS = {"adam": AdamSettings, "sgd": SGDSettings}
