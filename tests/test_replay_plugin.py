"""ReplayPlugin and BalancedReplayPlugin inside a real Naive strategy on Split Digits."""

from __future__ import annotations

import pytest
import torch

from cl_runner.benchmarks import SplitDigits
from cl_runner.buffers import (
    ClassBalancedBuffer,
    ExperienceBalancedBuffer,
    ParametricBuffer,
    ReservoirSamplingBuffer,
)
from cl_runner.models import SimpleMLP
from cl_runner.training import BalancedReplayPlugin, Naive, ReplayPlugin, SupervisedPlugin


class BatchSizes(SupervisedPlugin):
    """Records (experience, batch size, labels) of every training mini-batch."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int, list[int]]] = []

    def before_training_iteration(self, strategy, **kwargs):
        self.batches.append((strategy.experience.current_experience, len(strategy.mb_y),
                             strategy.mb_y.tolist()))


def make_strategy(plugin, *, mb: int = 32, epochs: int = 1, extra=()):
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=32)
    return Naive(model, torch.optim.SGD(model.parameters(), lr=0.01), train_mb_size=mb,
                 train_epochs=epochs, plugins=[plugin, *extra], evaluator=None)


def test_avalanche_defaults():
    plugin = ReplayPlugin()
    assert plugin.mem_size == 200 and plugin.batch_size is None
    assert plugin.batch_size_mem is None and plugin.task_balanced_dataloader is False
    assert isinstance(plugin.storage_policy, ExperienceBalancedBuffer)
    assert plugin.storage_policy.max_size == 200
    with pytest.raises(ValueError, match="mem_size=200 differs from storage_policy.max_size=500"):
        ReplayPlugin(storage_policy=ParametricBuffer(500))


def test_batches_are_current_plus_memory_and_epoch_follows_current_data():
    bench = SplitDigits(seed=0)
    sizes = BatchSizes()
    strategy = make_strategy(ReplayPlugin(mem_size=100, batch_size_mem=10,
                                          storage_policy=ReservoirSamplingBuffer(100)),
                             extra=[sizes])
    for exp in bench.train_stream[:3]:
        strategy.train(exp)
    for i, exp in enumerate(bench.train_stream[:3]):
        batches = [b for b in sizes.batches if b[0] == i]
        n = len(exp.dataset)
        assert len(batches) == -(-n // 32)  # epoch length from the current data only
        expected_mem = 0 if i == 0 else 10
        assert [s for _, s, _ in batches[:-1]] == [32 + expected_mem] * (len(batches) - 1)
        if i:
            current = set(exp.classes_in_this_experience)
            for _, _, labels in batches:
                assert sum(y not in current for y in labels) == 10  # memory part: old classes


@pytest.mark.parametrize("policy", [None, ExperienceBalancedBuffer(25), ClassBalancedBuffer(25)])
def test_replay_balanced_memory_is_always_full(policy):
    """Avalanche's test_replay_balanced_memory: group lengths sum to 25 after every exp."""
    bench = SplitDigits(seed=0, return_task_id=True)
    plugin = ReplayPlugin(mem_size=25, storage_policy=policy)
    strategy = make_strategy(plugin)
    for exp in bench.train_stream:
        strategy.train(exp)
        groups = plugin.storage_policy.buffer_datasets
        assert sum(len(g) for g in groups) == 25


def test_zero_epochs_still_updates_the_buffer():
    """Avalanche's test_balancing: train_epochs=0 must still fire the buffer update."""
    bench = SplitDigits(seed=0)
    plugin = ReplayPlugin(mem_size=100, storage_policy=ClassBalancedBuffer(100))
    strategy = make_strategy(plugin, epochs=0)
    for i, exp in enumerate(bench.train_stream):
        strategy.train(exp)
        assert len(plugin.storage_policy.buffer) == 100
        assert len(plugin.storage_policy.buffer_groups) == 2 * (i + 1)


def test_group_balanced_replay_splits_batches_over_current_and_buffer_groups():
    bench = SplitDigits(seed=0)
    sizes = BatchSizes()
    plugin = BalancedReplayPlugin(mem_size=40, batch_size=30, balance="group",
                                  storage_policy=ClassBalancedBuffer(40))
    strategy = make_strategy(plugin, extra=[sizes])
    strategy.train(bench.train_stream[0])
    strategy.train(bench.train_stream[1])
    old = set(bench.train_stream[0].classes_in_this_experience)
    for exp_id, size, labels in sizes.batches:
        if exp_id == 1 and size == 30:
            # 3 groups (current data, 2 old classes) -> 10 samples each
            assert [labels.count(c) for c in sorted(old)] == [10, 10]
    with pytest.raises(ValueError, match="balance='class'"):
        BalancedReplayPlugin(balance="class")
