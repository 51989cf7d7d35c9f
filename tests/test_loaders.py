"""Balanced and replay loaders: Avalanche's split tables, epoch lengths and batch composition."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from cl_runner.data import (
    ClassificationDataset,
    GroupBalancedDataLoader,
    GroupBalancedInfiniteDataLoader,
    ReplayDataLoader,
    TaskBalancedDataLoader,
    TensorDataLoader,
    split_batch_size,
)
from cl_runner.data.sampling import NEVER_ENDING_LENGTH


def storage(labels: list[int], tasks: list[int] | None = None) -> ClassificationDataset:
    """Labelled groups on ONE storage; ``x`` holds each sample's row number so it can be traced.

    ``labels[i]`` is the size of the block with class label ``i`` (and task ``tasks[i]``).
    """
    tasks = tasks or [0] * len(labels)
    y = torch.cat([torch.full((n,), i) for i, n in enumerate(labels)])
    t = torch.cat([torch.full((n,), task) for task, n in zip(tasks, labels, strict=True)])
    return ClassificationDataset(torch.arange(len(y)).float().unsqueeze(1), y, t)


def groups(sizes: list[int]) -> list[ClassificationDataset]:
    """One subset per size, group ``i`` labelled ``i``, all sharing one storage."""
    data = storage(sizes)
    return [data.subset(torch.nonzero(data.targets == i).flatten()) for i in range(len(sizes))]


def label_counts(y: torch.Tensor, n_labels: int) -> list[int]:
    return torch.bincount(y, minlength=n_labels).tolist()


def rows(loader) -> list[list[int]]:
    return [x.flatten().long().tolist() for x, *_ in loader]


# -- batch size split --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("total", "n_groups", "expected"),
    [
        (32, 5, [7, 7, 6, 6, 6]),
        (32, 10, [4, 4, 3, 3, 3, 3, 3, 3, 3, 3]),
        (10, 3, [4, 3, 3]),
        (5, 5, [1, 1, 1, 1, 1]),
        (12, 4, [3, 3, 3, 3]),
    ],
)
def test_split_batch_size_table(total, n_groups, expected):
    assert split_batch_size(total, n_groups) == expected


def test_group_balanced_batch_holds_each_groups_share_in_group_order():
    loader = GroupBalancedDataLoader(groups([50] * 5), batch_size=32)
    _, y, _ = next(iter(loader))
    assert loader.batch_sizes == [7, 7, 6, 6, 6]
    shares = torch.tensor([7, 7, 6, 6, 6])
    assert y.tolist() == torch.repeat_interleave(torch.arange(5), shares).tolist()


def test_batch_smaller_than_group_count_takes_one_per_group_with_a_warning():
    """The seed tutorial's batch_size=4 over 5 experiences (Avalanche refuses it)."""
    with pytest.warns(UserWarning, match="batch_size=3 is smaller than the number of groups"):
        loader = GroupBalancedDataLoader(groups([5] * 4), batch_size=3)
    assert loader.batch_sizes == [1, 1, 1, 1]
    _, y, _ = next(iter(loader))
    assert y.tolist() == [0, 1, 2, 3]


# -- epoch length, drop-out and oversampling ---------------------------------------------------
def test_smaller_groups_drop_out_when_exhausted():
    loader = GroupBalancedDataLoader(groups([100, 30, 10]), batch_size=30, shuffle=True)
    counts = [label_counts(y, 3) for _, y, _ in loader]
    assert len(loader) == len(counts) == 10
    assert counts == [[10, 10, 10]] + [[10, 10, 0]] * 2 + [[10, 0, 0]] * 7


def test_oversampled_groups_restart_and_keep_batches_full():
    loader = GroupBalancedDataLoader(
        groups([100, 30, 10]), oversample_small_groups=True, batch_size=30, shuffle=True
    )
    batches = list(loader)
    assert len(loader) == len(batches) == 10
    assert all(label_counts(y, 3) == [10, 10, 10] for _, y, _ in batches)
    seen = torch.cat([x.flatten() for x, _, _ in batches])
    # group 2 (rows 130..139) restarts every step: each of its rows is seen once per step
    assert torch.bincount(seen.long(), minlength=140)[130:].tolist() == [10] * 10


def test_termination_group_is_seen_exactly_once_per_epoch():
    loader = GroupBalancedDataLoader(
        groups([97, 20]), oversample_small_groups=True, batch_size=20, shuffle=True
    )
    for _ in range(2):
        seen = torch.cat([x.flatten()[y == 0] for x, y, _ in loader]).long()
        assert sorted(seen.tolist()) == list(range(97))
    assert len(loader) == 10  # ceil(97 / 10)


def test_groups_without_a_full_batch_are_dropped_with_drop_last():
    loader = GroupBalancedDataLoader(groups([100, 3, 0]), batch_size=30, drop_last=True)
    assert loader.batch_sizes == [10, 10, 10]
    assert [label_counts(y, 3) for _, y, _ in loader] == [[10, 0, 0]] * 10


def test_unshuffled_groups_come_in_storage_order():
    loader = GroupBalancedDataLoader(groups([4, 4]), batch_size=4)
    assert rows(loader) == [[0, 1, 4, 5], [2, 3, 6, 7]]


# -- shuffling ---------------------------------------------------------------------------------
def make_replay(generator=None, **kwargs):
    data = storage([300, 40])
    current, memory = data.subset(torch.arange(300)), data.subset(torch.arange(300, 340))
    return ReplayDataLoader(
        current,
        memory,
        oversample_small_tasks=True,
        batch_size=16,
        batch_size_mem=8,
        shuffle=True,
        generator=generator,
        **kwargs,
    )


def test_shuffle_is_reproducible_with_a_generator():
    first = rows(make_replay(torch.Generator().manual_seed(3)))
    again = rows(make_replay(torch.Generator().manual_seed(3)))
    other = rows(make_replay(torch.Generator().manual_seed(4)))
    assert first == again
    assert first != other


def test_shuffle_differs_between_epochs_and_without_generator():
    loader = make_replay(torch.Generator().manual_seed(3))
    assert rows(loader) != rows(loader)
    assert rows(make_replay()) != rows(make_replay())


# -- ReplayDataLoader: Avalanche's test table (tests/benchmarks/utils/test_replay_loader.py) --
@pytest.mark.parametrize(
    ("batch", "n_current", "n_memory", "batch_len", "iterations"),
    [
        (64, 1000, 2000, 128, 15),  # bigger_memory
        (64, 10000, 2000, 128, 156),  # smaller_memory: memory cycles
        (256, 10000, 2000, 512, 39),  # big_batch_size
        (256, 10000, 100, 256, 39),  # zero_iterations_memory: memory has no full batch
        (256, 100, 2000, None, 0),  # zero_iterations_current
        (5, 10000, 2000, 10, 2000),  # small_batch_size
    ],
)
def test_replay_loader_avalanche_table(batch, n_current, n_memory, batch_len, iterations):
    memory_exp, current_exp = groups([2000, 10000])
    loader = ReplayDataLoader(
        current_exp.subset(torch.arange(n_current)),
        memory_exp.subset(torch.arange(n_memory)),
        oversample_small_tasks=True,
        batch_size=batch,
        batch_size_mem=batch,
        drop_last=True,
    )
    sizes = [len(y) for _, y, _ in loader]
    assert len(loader) == len(sizes) == iterations == n_current // batch
    assert all(size == batch_len for size in sizes)


def replay_counts(loader) -> list[list[int]]:
    """Per batch: [current, memory] sample counts (current is labelled 0, memory 1)."""
    return [label_counts(y, 2) for _, y, _ in loader]


def test_replay_batch_is_current_plus_memory_and_epoch_follows_current_data():
    current, memory = groups([100, 1000])
    loader = ReplayDataLoader(current, memory, batch_size=10, batch_size_mem=6, shuffle=True)
    assert len(loader) == 10
    assert replay_counts(loader) == [[10, 6]] * 10


def test_replay_memory_stops_without_oversampling_and_cycles_with_it():
    current, memory = groups([100, 25])
    plain = ReplayDataLoader(current, memory, batch_size=10, batch_size_mem=10)
    assert [m for _, m in replay_counts(plain)] == [10, 10, 5] + [0] * 7
    cycling = ReplayDataLoader(
        current, memory, oversample_small_tasks=True, batch_size=10, batch_size_mem=10
    )
    assert [m for _, m in replay_counts(cycling)] == [10, 10, 5] * 3 + [10]


def test_replay_without_memory_is_a_plain_loader():
    current, memory = groups([25, 0])
    for mem in (None, memory):
        loader = ReplayDataLoader(current, mem, batch_size=10, return_memory_mask=True)
        batches = list(loader)
        assert [len(y) for _, y, _, _ in batches] == [10, 10, 5]
        assert not any(bool(is_mem.any()) for *_, is_mem in batches)


def test_replay_memory_mask_marks_memory_samples():
    current, memory = groups([40, 30])
    loader = ReplayDataLoader(
        current,
        memory,
        oversample_small_tasks=True,
        batch_size=8,
        batch_size_mem=4,
        shuffle=True,
        return_memory_mask=True,
    )
    for _, y, _, is_memory in loader:
        assert is_memory.dtype == torch.bool
        assert is_memory.tolist() == (y == 1).tolist() == [False] * 8 + [True] * 4


def test_task_balanced_memory_split():
    memory = storage([30, 30, 30], tasks=[0, 1, 2])
    current = groups([50])[0]
    loader = ReplayDataLoader(
        current, memory, batch_size=5, batch_size_mem=10, task_balanced_dataloader=True
    )
    assert loader.batch_sizes == [5, 4, 3, 3]
    _, _, t = next(iter(loader))
    # current data is task 0 too: 5 current + 4 + 3 + 3 memory samples
    assert label_counts(t, 3) == [9, 3, 3]
    with pytest.warns(UserWarning, match="batch_size_mem=2 is smaller than the number of memory"):
        small = ReplayDataLoader(
            current, memory, batch_size=5, batch_size_mem=2, task_balanced_dataloader=True
        )
    assert small.batch_sizes == [5, 1, 1, 1]


def test_replay_batch_size_per_task():
    data = storage([60, 40], tasks=[0, 1])
    loader = ReplayDataLoader(data, None, batch_size={0: 6, 1: 2})
    counts = [label_counts(t, 2) for _, _, t in loader]
    # the current task with the most batches (task 1: 20) sets the epoch length
    assert len(loader) == len(counts) == 20
    assert counts == [[6, 2]] * 10 + [[0, 2]] * 10
    with pytest.raises(ValueError, match=r"no entry for task\(s\) \[1\]"):
        ReplayDataLoader(data, None, batch_size={0: 6})


# -- task balancing and the never-ending loader ----------------------------------------------
def test_task_balanced_loader_splits_by_ascending_task_label():
    data = storage([12, 12, 12], tasks=[2, 0, 1])
    loader = TaskBalancedDataLoader(data, batch_size=7)
    _, y, t = next(iter(loader))
    assert loader.batch_sizes == [3, 2, 2]
    assert t.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert y.tolist() == [1, 1, 1, 2, 2, 0, 0]
    with pytest.raises(ValueError, match="oversample_small_groups"):
        TaskBalancedDataLoader(data, oversample_small_tasks=True)


def test_infinite_loader_takes_batch_size_per_group_forever():
    loader = GroupBalancedInfiniteDataLoader(groups([10, 4]), batch_size=2, shuffle=True)
    assert len(loader) == NEVER_ENDING_LENGTH
    batches = iter(loader)
    counts = [label_counts(next(batches)[1], 2) for _ in range(50)]
    assert counts == [[2, 2]] * 50
    with pytest.raises(ValueError, match="never-ending"):
        GroupBalancedInfiniteDataLoader(groups([1]), batch_size=2, drop_last=True)


# -- plain loader ----------------------------------------------------------------------------
@pytest.mark.parametrize("drop_last", [False, True])
def test_tensor_loader_matches_torch_dataloader(drop_last):
    ours = TensorDataLoader(storage([23]), batch_size=5, drop_last=drop_last)
    theirs = DataLoader(TensorDataset(torch.arange(23)), 5, drop_last=drop_last)
    assert len(ours) == len(theirs)
    assert rows(ours) == [x.tolist() for (x,) in theirs]


def test_tensor_loader_shuffles_a_permutation():
    loader = TensorDataLoader(storage([23]), batch_size=5, shuffle=True)
    order = sum(rows(loader), [])
    assert sorted(order) == list(range(23))
    assert order != list(range(23))


# -- torch DataLoader path: workers, collate_fn, generic datasets ------------------------------
def test_fast_path_gathers_whole_batches(monkeypatch):
    calls = []
    gather = ClassificationDataset.gather

    def counting_gather(self, positions):
        calls.append(len(positions))
        return gather(self, positions)

    monkeypatch.setattr(ClassificationDataset, "gather", counting_gather)
    monkeypatch.setattr(ClassificationDataset, "__getitem__", None)
    list(make_replay())
    assert calls == [16 + 8] * 18 + [12 + 8]  # 300 current samples: 18 full batches and 12


def test_workers_give_the_same_batches_as_in_process(monkeypatch):
    monkeypatch.setattr(ClassificationDataset, "__getitem__", None)  # workers fetch whole batches
    in_process = make_replay(torch.Generator().manual_seed(7))
    workers = make_replay(torch.Generator().manual_seed(7), num_workers=2, persistent_workers=True)
    assert workers._torch_loader is not None and in_process._torch_loader is None
    for _ in range(2):
        assert rows(workers) == rows(in_process)


def test_collate_fn_sees_a_list_of_samples():
    samples_seen = []

    def collate(samples):
        samples_seen.append(samples)
        return len(samples)

    data = storage([10, 10], tasks=[0, 1])
    loader = TaskBalancedDataLoader(data, batch_size=6, collate_fn=collate)
    assert list(loader) == [6, 6, 6, 2]
    first = samples_seen[0]
    assert isinstance(first, list) and len(first[0]) == 3 and first[0][0].shape == (1,)


@pytest.mark.parametrize(
    ("name", "value"),
    [("sampler", None), ("batch_sampler", None), ("collate_mbatches", None), ("bogus", 1)],
)
def test_unknown_kwargs_are_refused_by_name(name, value):
    with pytest.raises(ValueError, match=rf"unsupported argument '{name}'.*allowed: shuffle"):
        GroupBalancedDataLoader(groups([4, 4]), batch_size=4, **{name: value})


def test_worker_only_options_need_workers():
    with pytest.raises(ValueError, match="need num_workers > 0"):
        TensorDataLoader(storage([4]), batch_size=2, persistent_workers=True)


def test_generic_torch_datasets_work_through_torch_collation():
    a = TensorDataset(torch.zeros(30, 2), torch.zeros(30, dtype=torch.long))
    b = TensorDataset(torch.ones(10, 2), torch.ones(10, dtype=torch.long))
    loader = GroupBalancedDataLoader([a, b], batch_size=6, shuffle=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 10
    assert [y.tolist() for _, y in batches[:4]] == [[0, 0, 0, 1, 1, 1]] * 3 + [[0, 0, 0, 1]]
    replay = ReplayDataLoader(a, b, batch_size=4, batch_size_mem=2, return_memory_mask=True)
    x, y, is_memory = next(iter(replay))
    assert is_memory.tolist() == (y == 1).tolist() == [False] * 4 + [True] * 2
