"""Exemplar-selection strategies: rank a group's samples, best first (Avalanche's interface).

The buffer keeps a prefix of the ranking, so "the last indices are the first to be removed".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import lazy_loader as lazy

from cl_runner.models.tasks import forward_with_tasks

if TYPE_CHECKING:
    from torch import Tensor, nn

    from cl_runner.data.dataset import ClassificationDataset

torch = lazy.load("torch")

DEFAULT_EVAL_MB_SIZE = 256


class ExemplarsSelectionStrategy(ABC):
    """Orders the samples of a dataset from most to least worth keeping.

    ``name_part`` is the word a run name gets for it (None: nothing, for the default).
    """

    name_part: ClassVar[str | None] = None

    @abstractmethod
    def make_sorted_indices(self, strategy: Any, data: ClassificationDataset) -> Tensor:
        """All positions of ``data`` as a 1-D LongTensor, best first."""

    def select(self, strategy: Any, data: ClassificationDataset, k: int) -> Tensor:
        """The best ``k`` positions; strategies that rank greedily may stop after ``k``."""
        return self.make_sorted_indices(strategy, data)[:k]


class RandomExemplarsSelectionStrategy(ExemplarsSelectionStrategy):
    """A uniform random order from torch's global generator (``torch.manual_seed`` fixes it)."""

    def make_sorted_indices(self, strategy: Any, data: ClassificationDataset) -> Tensor:
        return torch.randperm(len(data))


class FeatureBasedExemplarsSelectionStrategy(ExemplarsSelectionStrategy):
    """Ranks samples by the output of the model's submodule ``layer_name``.

    Features are taken in eval mode, under ``no_grad``, without training augmentation, in
    batches of ``strategy.eval_mb_size`` (256 if absent) on ``strategy.device`` (the model's
    device if absent), flattened to [N, D]; multi-task models get the task labels. The hook
    lives only during extraction and the model's train/eval mode is restored afterwards.
    """

    def __init__(self, model: nn.Module, layer_name: str) -> None:
        modules = dict(model.named_modules())
        if layer_name not in modules:
            raise ValueError(
                f"layer_name={layer_name!r} is not a submodule of {type(model).__name__}; "
                f"available: {', '.join(repr(n) for n in modules if n)}"
            )
        self.model = model
        self.layer_name = layer_name
        self._layer = modules[layer_name]

    def make_sorted_indices(self, strategy: Any, data: ClassificationDataset) -> Tensor:
        return self.make_sorted_indices_from_features(self.extract_features(strategy, data))

    @abstractmethod
    def make_sorted_indices_from_features(self, features: Tensor) -> Tensor:
        """All row positions of ``features`` ([N, D]), best first."""

    def extract_features(self, strategy: Any, data: ClassificationDataset) -> Tensor:
        """The hooked layer's output for every sample of ``data``, as an [N, D] tensor."""
        device = getattr(strategy, "device", None)
        if device is None:
            device = next(self.model.parameters(), torch.empty(0)).device
        batch_size = getattr(strategy, "eval_mb_size", None) or DEFAULT_EVAL_MB_SIZE
        data = data.eval()
        captured: list[Tensor] = []
        last: dict[str, Tensor] = {}

        def keep_output(module: nn.Module, inputs: Any, output: Tensor) -> None:
            last["out"] = output.detach()

        hook = self._layer.register_forward_hook(keep_output)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(data), batch_size):
                    stop = min(start + batch_size, len(data))
                    x, _, t = data.gather(torch.arange(start, stop, device=data.device))
                    forward_with_tasks(self.model, x.to(device), t.to(device))
                    captured.append(last["out"].flatten(1))
        finally:
            hook.remove()
            self.model.train(was_training)
        if not captured:
            return torch.empty(0, 0, device=device)
        return torch.cat(captured)


def herding_order(features: Tensor, k: int | None = None) -> Tensor:
    """iCaRL herding: greedily add the sample that brings the selection's mean closest to the
    mean of all features; ties go to the lowest index. Only the first ``k`` steps are run.

    ||(s + f_j)/(i+1) - mu||^2 ranks like ||f_j||^2 + 2 f_j.(s - (i+1) mu), so a step is one
    matrix-vector product: O(k N D) in all, in float64 to keep near-ties stable.
    """
    f = features.double()
    n = len(f)
    k = n if k is None else min(k, n)
    mu = f.mean(0)
    sq_norms = (f * f).sum(1)
    chosen_sum = torch.zeros_like(mu)
    taken = torch.zeros(n, dtype=torch.bool, device=f.device)
    order = torch.empty(k, dtype=torch.long, device=f.device)
    for i in range(k):
        score = sq_norms + 2 * (f @ (chosen_sum - (i + 1) * mu))
        score.masked_fill_(taken, float("inf"))
        j = torch.argmin(score)
        order[i] = j
        taken[j] = True
        chosen_sum += f[j]
    return order


class HerdingSelectionStrategy(FeatureBasedExemplarsSelectionStrategy):
    """Herding order (iCaRL), features not normalised; computes only the kept prefix."""

    name_part = "herding"

    def make_sorted_indices_from_features(self, features: Tensor) -> Tensor:
        return herding_order(features)

    def select(self, strategy: Any, data: ClassificationDataset, k: int) -> Tensor:
        return herding_order(self.extract_features(strategy, data), k)


class ClosestToCenterSelectionStrategy(FeatureBasedExemplarsSelectionStrategy):
    """Ascending squared distance to the mean feature (ties: lowest index first)."""

    name_part = "closest_to_center"

    def make_sorted_indices_from_features(self, features: Tensor) -> Tensor:
        distances = ((features - features.mean(0)) ** 2).sum(1)
        return torch.argsort(distances, stable=True)
