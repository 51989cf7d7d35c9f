"""The networks: Avalanche's SimpleMLP, a small CNN for CIFAR, and a multi-head classifier."""

from __future__ import annotations

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

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 32) -> None:
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
    """A shared trunk with one linear head per task; each sample uses its task's head.

    Heads are created up front (``n_tasks``) so optimizers see every parameter from the start.
    Each head outputs ``num_classes`` logits (global class ids), so targets need no remapping.
    """

    def __init__(self, trunk: nn.Module, feature_size: int, num_classes: int, n_tasks: int) -> None:
        super().__init__()
        self.features = trunk
        self.heads = nn.ModuleList(nn.Linear(feature_size, num_classes) for _ in range(n_tasks))

    def forward(self, x: Tensor, task_labels: Tensor) -> Tensor:
        feats = self.features(x)
        out = feats.new_empty(len(feats), self.heads[0].out_features)
        for t in task_labels.unique().tolist():
            if not 0 <= t < len(self.heads):
                raise ValueError(f"task label {t} has no head (model has {len(self.heads)} heads)")
            mask = task_labels == t
            out[mask] = self.heads[t](feats[mask])
        return out


def MultiHeadMLP(  # noqa: N802 - constructor named like the model it builds
    num_classes: int = 10,
    input_size: int = 28 * 28,
    n_tasks: int = 5,
    hidden_size: int = 512,
    hidden_layers: int = 1,
    drop_rate: float = 0.5,
) -> MultiHeadClassifier:
    """SimpleMLP's trunk with one head per task (task-incremental runs)."""
    trunk = SimpleMLP(num_classes, input_size, hidden_size, hidden_layers, drop_rate).features
    return MultiHeadClassifier(trunk, hidden_size, num_classes, n_tasks)


__all__ = [
    "MultiHeadClassifier",
    "MultiHeadMLP",
    "MultiTaskModule",
    "SimpleCNN",
    "SimpleMLP",
]

