"""iCaRL (Rebuffi et al., CVPR 2017): herded exemplars, distillation on the old classes'
sigmoid outputs, nearest-mean-of-exemplars classification.

Avalanche's ``ICaRL`` (same arguments and order: ``feature_extractor, classifier, optimizer,
memory_size, buffer_transform, fixed_memory, ...``; no criterion). The model is
``TrainEvalModel(feature_extractor, classifier, NCMClassifier())``: training uses the
classifier's logits, evaluation the nearest class mean.

- Training set of an experience: its data plus every exemplar, shuffled together.
- Loss: binary cross-entropy of ``sigmoid(logits)`` against targets that are one-hot for the
  true class, except on the old classes' columns, which hold the previous model's sigmoid
  outputs on the same batch; averaged over batch x classes.
- After each experience: the exemplars are selected per class (herding on L2-normalised
  features by default: ``ICaRLHerdingSelectionStrategy``), the class means recomputed from the
  exemplars only (L2-normalised features, averaged with those of the horizontally flipped
  images for image batches, then normalised; zero for classes without exemplars), and the
  model is copied as the next experience's "previous model".
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.buffers.selection import FeatureBasedExemplarsSelectionStrategy
from cl_runner.checks import BOOL, NON_NEGATIVE_INT, SettingError
from cl_runner.core import SupervisedPlugin
from cl_runner.training.rehearsal import RehearsalTemplate, dataset_outputs
from cl_runner.training.strategy import RunComponents, SupervisedTemplate, default_evaluator

if TYPE_CHECKING:
    from torch import Tensor

    from cl_runner.benchmarks.info import StreamInfo
    from cl_runner.data.dataset import ClassificationDataset

torch = lazy.load("torch")

HERDING_STEPS = 1000  # Avalanche's (and the original code's) cap on herding iterations


def icarl_herding_order(features: Tensor, k: int, max_steps: int = HERDING_STEPS) -> Tensor:
    """iCaRL's herding as its original code (and Avalanche) runs it, on L2-normalised rows.

    With mu the mean normalised feature and w = mu, each step picks i = argmax_i w . f_i
    (first on ties), records it if it is new, and sets w <- w + mu - f_i; it stops after
    ``k`` distinct picks or ``max_steps`` steps (so fewer than ``k`` may come back). Returns
    the picked positions in the order they were first picked.
    """
    n = len(features)
    k = min(k, n)
    if k <= 0:
        return torch.empty(0, dtype=torch.long, device=features.device)
    f = torch.nn.functional.normalize(features.float(), dim=1)
    mu = f.mean(0)
    w = mu.clone()
    taken = torch.zeros(n, dtype=torch.bool)
    order: list[int] = []
    for _ in range(max_steps):
        i = int(torch.argmax(f @ w))
        if not taken[i]:
            taken[i] = True
            order.append(i)
            if len(order) == k:
                break
        w += mu - f[i]
    return torch.tensor(order, dtype=torch.long, device=features.device)


class ICaRLHerdingSelectionStrategy(FeatureBasedExemplarsSelectionStrategy):
    """iCaRL's own herding (``icarl_herding_order``) on the features of ``layer_name``.

    ``cl-run selection=icarl_herding`` (with ``buffer=parametric``); the default of
    ``strategy=icarl``. Unlike ``HerdingSelectionStrategy`` the features are L2-normalised
    and a sample may be picked again (only its first pick counts), as in Avalanche.
    """

    name_part = "icarl_herding"

    def make_sorted_indices_from_features(self, features: Tensor) -> Tensor:
        ranked = icarl_herding_order(features, len(features))
        rest = torch.ones(len(features), dtype=torch.bool, device=features.device)
        rest[ranked] = False
        return torch.cat([ranked, torch.nonzero(rest).flatten()])

    def select(self, strategy: Any, data: ClassificationDataset, k: int) -> Tensor:
        return icarl_herding_order(self.extract_features(strategy, data), k)


def _normalised_features(network: Any, x: Tensor, t: Tensor) -> Tensor:
    """L2-normalised features; for image batches, averaged with those of the flipped images."""
    normalize = torch.nn.functional.normalize
    features = normalize(network(x), dim=1)
    if x.dim() == 4:
        features = (features + normalize(network(torch.flip(x, [3])), dim=1)) / 2
    return features


def class_means(
    network: Any, data: ClassificationDataset, n_classes: int, batch_size: int, device: Any
) -> Tensor:
    """iCaRL's class means ([n_classes, features]) from the exemplars ``data``: the mean of
    the normalised (flip-averaged) features of each class, normalised; zero rows for classes
    without exemplars."""
    features = dataset_outputs(network, data, batch_size, device, forward=_normalised_features)
    labels = data.targets.to(device)
    sums = torch.zeros(n_classes, features.shape[1], device=device, dtype=features.dtype)
    sums.index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=n_classes).clamp(min=1).to(features.dtype)
    return torch.nn.functional.normalize(sums / counts[:, None], dim=1)


class _ICaRLPlugin(SupervisedPlugin):
    """iCaRL's exemplars, class means and previous model."""

    def __init__(
        self, storage_policy: Any, memory_size: int, fixed_memory: bool, old_model_eval: bool
    ) -> None:
        self.storage_policy = storage_policy
        self.memory_size, self.fixed_memory = memory_size, fixed_memory
        self.old_model_eval = old_model_eval
        self.seen_classes: set[int] = set()
        self.old_classes: list[int] = []
        self.old_model: Any = None
        self._old_state: dict[str, Any] | None = None  # restored, not yet built

    def after_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        exemplars = self.storage_policy.buffer
        if len(exemplars):
            strategy.adapted_dataset = strategy.adapted_dataset.concat(exemplars)

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if self._old_state is not None:
            self.old_model = self._previous_model(strategy.model)
            self.old_model.load_state_dict(self._old_state)
            self._old_state = None

    def _previous_model(self, model: Any) -> Any:
        from torch import nn

        old = nn.Sequential(copy.deepcopy(model.feature_extractor),
                            copy.deepcopy(model.train_classifier))
        old.train(not self.old_model_eval)
        for param in old.parameters():
            param.requires_grad = False
        return old

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        model = strategy.model
        experience_classes = torch.unique(strategy.experience.dataset.targets).tolist()
        self.seen_classes |= set(experience_classes)
        model.eval()
        if not self.fixed_memory:
            self.storage_policy.max_size = self.memory_size * len(self.seen_classes)
        self.storage_policy.update(strategy, **kwargs)
        self.compute_class_means(strategy)
        model.train()
        self.old_model = self._previous_model(model)
        self.old_classes = sorted(set(self.old_classes) | set(experience_classes))

    def compute_class_means(self, strategy: Any) -> None:
        model = strategy.model
        exemplars = self.storage_policy.buffer
        n_classes = getattr(model.train_classifier, "out_features", 0)
        if len(exemplars):
            n_classes = max(n_classes, int(exemplars.targets.max()) + 1)
        means = class_means(model.feature_extractor, exemplars, n_classes,
                            strategy.eval_mb_size, strategy.device)
        model.eval_classifier.replace_class_means(means)

    def state_dict(self) -> dict[str, Any]:
        old = self.old_model.state_dict() if self.old_model is not None else self._old_state
        return {
            "storage_policy": self.storage_policy.state_dict(),
            "seen_classes": sorted(self.seen_classes),
            "old_classes": list(self.old_classes),
            "old_model": None if old is None else {k: v.cpu() for k, v in old.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.storage_policy.load_state_dict(state["storage_policy"])
        self.seen_classes = set(state["seen_classes"])
        self.old_classes = list(state["old_classes"])
        self.old_model = None
        self._old_state = state["old_model"]


class ICaRL(RehearsalTemplate):
    """iCaRL (Avalanche's ``ICaRL``), class-incremental.

    The exemplars live in ``storage_policy``, which must keep them per class; without it they
    live in a ``ParametricBuffer(memory_size, groupby="class")`` ranked by iCaRL's herding
    (``cl-run``: ``buffer=parametric selection=icarl_herding``, the config's default;
    ``buffer=class_balanced`` keeps random exemplars instead). ``fixed_memory=True``: the
    ``memory_size`` exemplars are shared by the classes seen so far; False: every class keeps
    ``memory_size``. ``buffer_transform`` must be None: exemplars go through the stream's
    own transforms. ``old_model_eval=True`` runs the previous model in eval mode (Avalanche
    runs it in train mode, dropout and batch statistics included). ``loss_terms``:
    ``classification`` and ``distillation``, the parts of the BCE on the new and the old
    classes' columns.
    """

    short_name = "icarl"
    memory_arg = "memory_size"
    buffer_groups = ("class",)
    buffer_hint = ("a class-grouped memory: parametric with buffer.groupby=class (herded "
                   "exemplars, the default) or class_balanced")
    default_buffer = "parametric"

    def __init__(
        self,
        feature_extractor: Any,
        classifier: Any,
        optimizer: Any,
        memory_size: int,
        buffer_transform: Any,
        fixed_memory: bool,
        train_mb_size: int = 1,
        train_epochs: int = 1,
        eval_mb_size: int | None = None,
        device: Any = None,
        plugins: Any = None,
        evaluator: Any = default_evaluator,
        eval_every: int = -1,
        *,
        peval_mode: str = "epoch",
        storage_policy: Any = None,
        old_model_eval: bool = False,
    ) -> None:
        ICaRL.check_args(memory_size=memory_size, buffer_transform=buffer_transform,
                         fixed_memory=fixed_memory, old_model_eval=old_model_eval)
        from cl_runner.buffers import ParametricBuffer
        from cl_runner.models.networks import NCMClassifier, TrainEvalModel

        ncm = NCMClassifier(normalize=True, num_classes=getattr(classifier, "out_features", None))
        model = TrainEvalModel(feature_extractor, classifier, ncm)
        if storage_policy is None:
            selection = ICaRLHerdingSelectionStrategy(model, "feature_extractor")
            storage_policy = ParametricBuffer(memory_size, groupby="class",
                                              selection_strategy=selection)
        self.storage_policy = storage_policy
        self.memory_size, self.buffer_transform = memory_size, buffer_transform
        self.fixed_memory = fixed_memory
        self.icarl = _ICaRLPlugin(storage_policy, memory_size, fixed_memory, old_model_eval)
        super().__init__(model, optimizer, None, train_mb_size, train_epochs, eval_mb_size,
                         device, [self.icarl, *(plugins or [])], evaluator,
                         eval_every, peval_mode)
        self.old_logits: Tensor | None = None

    @classmethod
    def check_args(
        cls, memory_size: Any = 0, buffer_transform: Any = None, fixed_memory: Any = True,
        old_model_eval: Any = False, **args: Any,
    ) -> None:
        super().check_args(**args)
        NON_NEGATIVE_INT("memory_size", memory_size)
        if buffer_transform is not None:
            raise SettingError("buffer_transform", buffer_transform,
                               "null: exemplars go through the stream's own transforms")
        BOOL("fixed_memory", fixed_memory)
        BOOL("old_model_eval", old_model_eval)

    @classmethod
    def check_stream(cls, args: Mapping[str, Any], stream: StreamInfo) -> None:
        super().check_stream(args, stream)
        if stream.n_tasks > 1:
            raise SettingError("", cls.short_name,
                               "a class-incremental stream (benchmark.return_task_id=false): "
                               "iCaRL classifies by the nearest class mean over all classes")

    @classmethod
    def from_run(cls, parts: RunComponents, **args: Any) -> SupervisedTemplate:
        model = parts.model
        features = getattr(model, "features", None)
        classifier = getattr(model, "classifier", None)
        if features is None or classifier is None:
            raise ValueError(f"strategy=icarl needs a model with a `features` extractor and a "
                             f"`classifier` (mlp, simple_cnn), not {type(model).__name__}")
        return cls(features, classifier, parts.optimizer, memory_size=parts.buffer.max_size,
                   device=parts.device, plugins=parts.plugins, evaluator=parts.evaluator,
                   storage_policy=parts.buffer, **args)

    def forward(self) -> Tensor:
        self.old_logits = None
        old_model = self.icarl.old_model
        if self.is_training and old_model is not None and self.icarl.old_classes:
            with torch.no_grad():
                self.old_logits = old_model(self.mb_x)
        return super().forward()

    def criterion(self) -> Tensor:
        logits, y = self.mb_output, self.mb_y
        targets = torch.nn.functional.one_hot(y, logits.shape[1]).to(logits.dtype)
        old = self.icarl.old_classes if self.old_logits is not None else []
        if old:
            targets[:, old] = torch.sigmoid(self.old_logits[:, old])
        losses = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, targets, reduction="none")
        loss = losses.mean()
        if old and self.is_training:
            distillation = losses[:, old].sum() / losses.numel()
            self.loss_terms["distillation"] = distillation.detach()
            self.loss_terms["classification"] = (loss - distillation).detach()
        return loss
