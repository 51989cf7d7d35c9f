"""Exemplar selection: oracle orders, herding against a brute-force reference, model hygiene."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from cl_runner.benchmarks import SplitDigits
from cl_runner.buffers import (
    ClosestToCenterSelectionStrategy,
    FeatureBasedExemplarsSelectionStrategy,
    HerdingSelectionStrategy,
    ParametricBuffer,
    RandomExemplarsSelectionStrategy,
    herding_order,
)
from cl_runner.data import ClassificationDataset
from cl_runner.models import MultiTaskModule, SimpleMLP

STRATEGY = SimpleNamespace(device="cpu", eval_mb_size=8)


class Abs(nn.Module):
    def forward(self, x):
        return x.abs()


class AbsNet(nn.Module):
    """Features are |x| (Avalanche's SelectionStrategyTest model); records how it was called."""

    def __init__(self) -> None:
        super().__init__()
        self.features = Abs()
        self.head = nn.Linear(1, 1)
        self.calls: list[dict] = []

    def forward(self, x):
        self.calls.append(
            {"training": self.training, "grad": torch.is_grad_enabled(), "x": x.clone()}
        )
        return self.head(self.features(x)[:, :1])


def toy_data(values=(0.0, -4.0, 5.0), **kwargs) -> ClassificationDataset:
    x = torch.tensor(values)[:, None]
    return ClassificationDataset(x, torch.zeros(len(x), dtype=torch.long), **kwargs)


@pytest.mark.parametrize("strategy", [STRATEGY, SimpleNamespace(device="cpu", eval_mb_size=1),
                                      SimpleNamespace()])
def test_oracle_orders(strategy):
    """Avalanche test 6: features 0, 4, 5 (mean 3)."""
    model = AbsNet()
    herding = HerdingSelectionStrategy(model, "features").make_sorted_indices(strategy, toy_data())
    closest = ClosestToCenterSelectionStrategy(model, "features")
    assert herding.tolist() == [1, 0, 2]
    assert closest.make_sorted_indices(strategy, toy_data()).tolist() == [1, 2, 0]
    assert herding.dtype == torch.long


def brute_force_herding(features: torch.Tensor) -> list[int]:
    """Avalanche's loop, literally: candidate running means, +inf for taken, first argmin."""
    n = len(features)
    mu = features.mean(0)
    current = torch.zeros_like(mu)
    order: list[int] = []
    for i in range(n):
        best, best_dist = -1, float("inf")
        for j in range(n):
            if j in order:
                continue
            candidate = (i * current + features[j]) / (i + 1)
            dist = float(((candidate - mu) ** 2).sum())
            if dist < best_dist:
                best, best_dist = j, dist
        order.append(best)
        current = (i * current + features[best]) / (i + 1)
    return order


@pytest.mark.parametrize("seed", range(5))
def test_herding_matches_brute_force_and_prefixes(seed):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(40, 2, generator=generator, dtype=torch.float64)
    full = herding_order(features)
    assert full.tolist() == brute_force_herding(features)
    assert sorted(full.tolist()) == list(range(40))
    for k in (0, 1, 7, 40, 100):
        assert herding_order(features, k).tolist() == full[:k].tolist()


def test_herding_ties_go_to_the_lowest_index():
    features = torch.tensor([[2.0], [-2.0], [1.0], [-1.0]])  # ties at steps 0 and 2
    assert herding_order(features).tolist() == brute_force_herding(features) == [2, 3, 0, 1]


def test_closest_to_center_matches_brute_force():
    features = torch.randn(30, 3, generator=torch.Generator().manual_seed(1))

    class Given(ClosestToCenterSelectionStrategy):
        def extract_features(self, strategy, data):
            return features

    ranked = Given(AbsNet(), "features").make_sorted_indices(None, toy_data())
    mu = features.mean(0)
    distances = [float(((f - mu) ** 2).sum()) for f in features]
    assert ranked.tolist() == sorted(range(30), key=lambda i: (distances[i], i))


@pytest.mark.parametrize("was_training", [True, False])
def test_model_runs_in_eval_without_grad_and_its_mode_is_restored(was_training):
    model = AbsNet().train(was_training)
    HerdingSelectionStrategy(model, "features").make_sorted_indices(STRATEGY, toy_data())
    assert model.training is was_training
    assert model.calls and all(not c["training"] and not c["grad"] for c in model.calls)
    assert not model.features._forward_hooks, "the feature hook outlived the extraction"


def test_features_come_without_training_augmentation_in_batches():
    model = AbsNet()
    data = toy_data((1.0, -2.0, 3.0, -4.0, 5.0), train_transform=lambda x: x + 100)
    selection = ClosestToCenterSelectionStrategy(model, "features")
    features = selection.extract_features(SimpleNamespace(eval_mb_size=2), data)
    assert features.tolist() == [[1.0], [2.0], [3.0], [4.0], [5.0]]
    assert [len(c["x"]) for c in model.calls] == [2, 2, 1]
    assert data.transform_group == "train", "the caller's dataset was switched to eval"


def test_multi_task_model_gets_the_task_labels():
    class TaskShift(MultiTaskModule):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Identity()

        def forward(self, x, task_labels):
            return self.features(x + 10 * task_labels[:, None])

    data = ClassificationDataset(torch.zeros(3, 1), [0, 0, 0], task_labels=[0, 2, 1])
    selection = ClosestToCenterSelectionStrategy(TaskShift(), "features")
    assert selection.extract_features(STRATEGY, data).flatten().tolist() == [0.0, 20.0, 10.0]


def test_conv_feature_maps_are_flattened():
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(1, 2, 3, padding=1))
    data = ClassificationDataset(torch.randn(4, 1, 5, 5), [0, 1, 0, 1])
    selection = HerdingSelectionStrategy(model, "conv")
    assert selection.extract_features(STRATEGY, data).shape == (4, 2 * 5 * 5)
    assert sorted(selection.make_sorted_indices(STRATEGY, data).tolist()) == [0, 1, 2, 3]


def test_unknown_layer_name_is_a_clear_error():
    with pytest.raises(ValueError, match="layer_name='feats'.*available: 'features', 'head'"):
        HerdingSelectionStrategy(AbsNet(), "feats")


def test_empty_data_gives_an_empty_order():
    empty = toy_data().empty()
    for selection in (
        HerdingSelectionStrategy(AbsNet(), "features"),
        ClosestToCenterSelectionStrategy(AbsNet(), "features"),
        RandomExemplarsSelectionStrategy(),
    ):
        assert selection.make_sorted_indices(STRATEGY, empty).tolist() == []


def test_random_selection_is_a_seeded_permutation():
    data = toy_data(tuple(range(20)))
    selection = RandomExemplarsSelectionStrategy()
    torch.manual_seed(0)
    first = selection.make_sorted_indices(None, data)
    torch.manual_seed(0)
    again = selection.make_sorted_indices(None, data)
    torch.manual_seed(1)
    other = selection.make_sorted_indices(None, data)
    assert sorted(first.tolist()) == list(range(20))
    assert first.tolist() == again.tolist() != other.tolist()


def test_abstract_feature_strategy_needs_a_ranking():
    with pytest.raises(TypeError):
        FeatureBasedExemplarsSelectionStrategy(AbsNet(), "features")


def test_parametric_herding_keeps_herding_prefixes_on_split_digits():
    torch.manual_seed(0)
    bench = SplitDigits(5)
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=16)
    buffer = ParametricBuffer(20, "class", HerdingSelectionStrategy(model, "features"))
    first = bench.train_stream[0]
    buffer.update(SimpleNamespace(experience=first, device="cpu", eval_mb_size=10_000))
    model.eval()
    expected = {}
    for label in first.classes_in_this_experience:
        data = first.dataset.subset(torch.nonzero(first.dataset.targets == label).flatten())
        with torch.no_grad():
            order = herding_order(model.features(data.gather(torch.arange(len(data)))[0]))
        expected[label] = data.storage_indices[order[:10]].tolist()
        assert buffer.buffer_groups[label].buffer.storage_indices.tolist() == expected[label]
    buffer.update(SimpleNamespace(experience=bench.train_stream[1]))
    for label, rows in expected.items():
        assert buffer.buffer_groups[label].buffer.storage_indices.tolist() == rows[:5]
