"""Stop a diverging run at once, naming where it diverged."""

from __future__ import annotations

from typing import Any

import lazy_loader as lazy

from cl_runner.core import SupervisedPlugin
from cl_runner.errors import NonFiniteLossError

torch = lazy.load("torch")


class FiniteLossGuard(SupervisedPlugin):
    """Raise NonFiniteLossError when the training loss becomes NaN or infinite.

    On the CPU every iteration is checked. On a GPU the check stays on the device and the
    host looks every ``check_every`` iterations (and at each epoch's end), so training never
    waits for a sync; the first bad iteration is still reported exactly.
    """

    def __init__(self, check_every: int = 50) -> None:
        self.check_every = check_every
        self._first_bad: torch.Tensor | None = None

    def before_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        self._first_bad = torch.full((), -1, dtype=torch.long, device=strategy.device)

    def before_backward(self, strategy: Any, **kwargs: Any) -> None:
        it = strategy.clock.train_exp_iterations
        bad = ~torch.isfinite(strategy.loss.detach()).all()
        if strategy.device.type == "cpu":
            if bad:
                self._raise(strategy, it, float(strategy.loss.detach()))
            return
        self._first_bad = torch.where(bad & (self._first_bad < 0), it, self._first_bad)
        if (it + 1) % self.check_every == 0:
            self._check(strategy)

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        self._check(strategy)

    def _check(self, strategy: Any) -> None:
        first = int(self._first_bad)
        if first >= 0:
            self._raise(strategy, first, float("nan"))

    @staticmethod
    def _raise(strategy: Any, iteration: int, value: float) -> None:
        exp = strategy.experience.current_experience
        raise NonFiniteLossError(
            f"training loss is {value} at experience {exp}, iteration {iteration} "
            f"(of this experience): lower optimizer.lr or check the data"
        )
