"""The networks: Avalanche's SimpleMLP, a small CNN for CIFAR, and a multi-head classifier."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class MultiTaskModule(nn.Module):
    """A model whose forward takes the task labels too: ``model(x, task_labels)``."""

    takes_task_labels = True

    def forward(self, x: Tensor, task_labels: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class SimpleMLP(nn.Module):
    """Flatten, ``hidden_layers`` x (Linear, ReLU, Dropout), then a linear classifier.

    ``features`` is the penultimate representation (the layer feature-based exemplar
    selection hooks, as in Avalanche).
    """

    def __init__(
        self,
        num_classes: int = 10,
        input_size: int = 28 * 28,
        hidden_size: int = 512,
        hidden_layers: int = 1,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_size
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden_size), nn.ReLU(inplace=True), nn.Dropout(drop_rate)]
            width = hidden_size
        self.features = nn.Sequential(nn.Flatten(), *layers)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class SimpleCNN(nn.Module):
    """Two conv blocks and a linear head: a quick baseline for 32x32 colour images."""

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, width: int = 32) -> None:
        super().__init__()
        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )
        self.features = nn.Sequential(
            block(in_channels, width), block(width, 2 * width),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class MultiHeadClassifier(MultiTaskModule):
    """One linear head per task label over ``in_features`` features; each sample uses its
    task's head (Avalanche's ``MultiHeadClassifier``, same arguments).

    Heads have ``initial_out_features`` outputs. ``adaptation(experience)`` (Avalanche's model
    adaptation) adds a head for each new task label of the experience, widens a head to the
    experience's largest class id + 1, and, with ``masking``, marks the experience's classes
    as the head's active units: the others output ``mask_value``. Strategies call it before
    each experience (in eval mode it marks no units). ``n_tasks`` (ours,
    keyword-only) creates heads for tasks ``0..n_tasks-1`` up front so optimizers see them
    from the start; a head never adapted masks nothing (Avalanche would mask all its units).
    Outputs of heads of different widths are padded to the widest with ``mask_value`` (0
    without masking). The active units are part of the state dict (``_extra_state``).
    """

    def __init__(
        self, in_features: int, initial_out_features: int = 2, masking: bool = True,
        mask_value: float = -1000, *, n_tasks: int = 1,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.initial_out_features = initial_out_features
        self.masking = masking
        self.mask_value = mask_value
        self.heads = nn.ModuleDict()
        self._active: dict[str, set[int]] = {}
        for t in range(n_tasks):
            self._add_head(t, initial_out_features)

    def _add_head(self, task: int, width: int) -> None:
        self.heads[str(task)] = nn.Linear(self.in_features, width)

    def adaptation(self, experience: object) -> None:
        """Heads wide enough for ``experience``'s task labels and classes, and (in training
        mode) its classes as active units."""
        classes = [int(c) for c in experience.classes_in_this_experience]
        width = max([self.initial_out_features, *(c + 1 for c in classes)])
        for task in experience.task_labels:
            key = str(int(task))
            if key not in self.heads:
                self._add_head(int(task), width)
            head = self.heads[key]
            if head.out_features < width:
                wider = nn.Linear(self.in_features, width).to(head.weight.device)
                with torch.no_grad():
                    wider.weight[: head.out_features] = head.weight
                    wider.bias[: head.out_features] = head.bias
                self.heads[key] = wider
            if self.training:
                self._active.setdefault(key, set()).update(classes)

    def get_extra_state(self) -> dict[str, list[int]]:
        return {key: sorted(units) for key, units in self._active.items()}

    def set_extra_state(self, state: dict[str, list[int]]) -> None:
        self._active = {key: set(units) for key, units in state.items()}

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        key = str(int(task_label))
        if key not in self.heads:
            raise ValueError(f"task label {task_label} has no head (heads: "
                             f"{', '.join(self.heads)}; adaptation(experience) adds one)")
        out = self.heads[key](x)
        active = self._active.get(key)
        if self.masking and active:
            keep = torch.zeros(out.shape[1], dtype=torch.bool, device=out.device)
            keep[[c for c in active if c < out.shape[1]]] = True
            out = out.masked_fill(~keep, self.mask_value)
        return out

    def forward(self, x: Tensor, task_labels: Tensor) -> Tensor:
        tasks = task_labels.unique().tolist()
        outputs = {t: self.forward_single_task(x[task_labels == t], t) for t in tasks}
        width = max(o.shape[1] for o in outputs.values())
        fill = self.mask_value if self.masking else 0.0
        out = x.new_full((len(x), width), fill)
        for t, o in outputs.items():
            out[task_labels == t, : o.shape[1]] = o
        return out


class MultiHeadNetwork(MultiTaskModule):
    """A shared trunk (``features``) and a masking ``MultiHeadClassifier`` with one head per
    task, as Avalanche's ``MTSimpleMLP``.

    Heads are created up front (``n_tasks``) so optimizers see every parameter from the start.
    Each head outputs ``num_classes`` logits (global class ids), so targets need no remapping;
    a head's units outside the classes it was trained on output ``mask_value``.
    """

    def __init__(self, trunk: nn.Module, feature_size: int, num_classes: int, n_tasks: int) -> None:
        super().__init__()
        self.features = trunk
        self.classifier = MultiHeadClassifier(feature_size, num_classes, n_tasks=n_tasks)

    def forward(self, x: Tensor, task_labels: Tensor) -> Tensor:
        return self.classifier(self.features(x), task_labels)


def MultiHeadMLP(  # noqa: N802 - constructor named like the model it builds
    num_classes: int = 10,
    input_size: int = 28 * 28,
    n_tasks: int = 5,
    hidden_size: int = 512,
    hidden_layers: int = 1,
    drop_rate: float = 0.5,
) -> MultiHeadNetwork:
    """SimpleMLP's trunk with one head per task (task-incremental runs)."""
    trunk = SimpleMLP(num_classes, input_size, hidden_size, hidden_layers, drop_rate).features
    return MultiHeadNetwork(trunk, hidden_size, num_classes, n_tasks)


class NCMClassifier(nn.Module):
    """Nearest class mean: scores are minus the Euclidean distance of the (L2-normalised, if
    ``normalize``) input to each class mean (Avalanche's ``NCMClassifier``).

    ``class_means`` ([classes, features], a buffer, so it is saved with the model) is set with
    ``replace_class_means``; a class whose mean is all zeros lies at distance 1 from every
    normalised input, as in Avalanche. Before any means are set, ``num_classes`` (if given)
    zero means are assumed (an evaluation before training scores every class -1).
    """

    def __init__(self, normalize: bool = True, *, num_classes: int | None = None) -> None:
        super().__init__()
        self.normalize = normalize
        self.num_classes = num_classes
        self.register_buffer("class_means", torch.zeros(0, 0))

    def replace_class_means(self, means: Tensor) -> None:
        """Use ``means`` ([classes, features]) from now on."""
        self.class_means = means.detach().clone().to(self.class_means.device)

    def forward(self, x: Tensor) -> Tensor:
        if self.class_means.numel() == 0:
            if self.num_classes is None:
                raise RuntimeError("NCMClassifier has no class means yet (replace_class_means)")
            return -x.new_ones(len(x), self.num_classes)
        if self.normalize:
            x = nn.functional.normalize(x, dim=1)
        return -torch.cdist(x, self.class_means.to(x.dtype))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        means = state_dict.get(prefix + "class_means")
        if means is not None and means.shape != self.class_means.shape:
            self.class_means = torch.zeros_like(means, device=self.class_means.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class TrainEvalModel(nn.Module):
    """A feature extractor with one classifier for training and another for evaluation,
    switched by the module's train/eval mode (Avalanche's ``TrainEvalModel``)."""

    def __init__(
        self, feature_extractor: nn.Module, train_classifier: nn.Module,
        eval_classifier: nn.Module,
    ) -> None:
        super().__init__()
        self.feature_extractor = feature_extractor
        self.train_classifier = train_classifier
        self.eval_classifier = eval_classifier

    def forward(self, x: Tensor) -> Tensor:
        features = self.feature_extractor(x)
        if self.training:
            return self.train_classifier(features)
        return self.eval_classifier(features)


class BiasLayer(nn.Module):
    """BiC's bias correction: ``alpha * z + beta`` on the logit columns of ``classes``, the
    other columns unchanged (Avalanche's ``BiasLayer``; alpha starts at 1, beta at 0)."""

    def __init__(self, classes: Sequence[int] | Tensor) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1))
        self.beta = nn.Parameter(torch.zeros(1))
        clss = torch.as_tensor(sorted({int(c) for c in classes}), dtype=torch.long)
        self.register_buffer("clss", clss)

    def forward(self, x: Tensor) -> Tensor:
        mask = torch.zeros(x.shape[1], dtype=x.dtype, device=x.device)
        mask[self.clss.to(x.device)] = 1
        return x + mask * ((self.alpha - 1) * x + self.beta)


class SCRModel(nn.Module):
    """Supervised contrastive replay's model (Avalanche's ``SCRModel``): features, L2-normalised;
    in training mode the ``projection`` of them (not re-normalised), in eval mode the nearest
    class mean scores (``ncm``, an ``NCMClassifier`` on the normalised features)."""

    def __init__(self, feature_extractor: nn.Module, projection: nn.Module, *,
                 num_classes: int | None = None) -> None:
        super().__init__()
        self.feature_extractor = feature_extractor
        self.train_classifier = projection
        self.ncm = self.eval_classifier = NCMClassifier(normalize=False, num_classes=num_classes)

    def features(self, x: Tensor) -> Tensor:
        return nn.functional.normalize(self.feature_extractor(x), p=2, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        features = self.features(x)
        if self.training:
            return self.train_classifier(features)
        return self.eval_classifier(features)


def projection_head(in_features: int, out_features: int = 128) -> nn.Sequential:
    """SCR's projection: Linear(in, in), ReLU, Linear(in, out) (Avalanche's SCR example)."""
    return nn.Sequential(nn.Linear(in_features, in_features), nn.ReLU(inplace=True),
                         nn.Linear(in_features, out_features))


__all__ = [
    "BiasLayer",
    "MultiHeadClassifier",
    "MultiHeadMLP",
    "MultiHeadNetwork",
    "MultiTaskModule",
    "NCMClassifier",
    "SCRModel",
    "SimpleCNN",
    "SimpleMLP",
    "TrainEvalModel",
    "projection_head",
]

