"""Storage policies: exact sampling laws, Avalanche's group-length tables, index-only storage."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import torch
from scipy.stats import chi2

from cl_runner.benchmarks import SplitDigits, nc_benchmark
from cl_runner.buffers import (
    BalancedExemplarsBuffer,
    ClassBalancedBuffer,
    ExemplarsSelectionStrategy,
    ExperienceBalancedBuffer,
    ParametricBuffer,
    RandomExemplarsSelectionStrategy,
    ReservoirSamplingBuffer,
)
from cl_runner.data import ClassificationDataset

GROUPBYS = [None, "class", "task", "experience"]


def fast_benchmark(return_task_id: bool = False):
    """Avalanche's "fast benchmark" shape: 5 experiences x 2 classes x 60 samples, 6 features.

    Feature 0 is the storage row, so a stored sample can be traced back to its source.
    """
    y = torch.arange(10).repeat_interleave(60)
    x = torch.cat([torch.arange(600.0)[:, None], torch.randn(600, 5)], dim=1)
    data = ClassificationDataset(x, y)
    return nc_benchmark(data, data, 5, return_task_id, shuffle=False)


def class_counts(buffer) -> dict[int, int]:
    """Class -> stored samples, for a buffer or a dataset (classes present only)."""
    data = buffer if isinstance(buffer, ClassificationDataset) else buffer.buffer
    classes, counts = torch.unique(data.targets, return_counts=True)
    return dict(zip(classes.tolist(), counts.tolist(), strict=True))


def update(buffer, exp) -> None:
    buffer.update(SimpleNamespace(experience=exp))


def rows_of(data: ClassificationDataset) -> set[int]:
    return set(data.storage_indices.tolist())


def make_policy(name: str, max_size: int):
    if name == "reservoir":
        return ReservoirSamplingBuffer(max_size)
    if name == "experience":
        return ExperienceBalancedBuffer(max_size)
    if name == "class":
        return ClassBalancedBuffer(max_size)
    return ParametricBuffer(max_size, groupby=name.removeprefix("parametric-") or None)


POLICIES = ["reservoir", "experience", "class"] + [f"parametric-{g or ''}" for g in GROUPBYS]


# -- common interface ---------------------------------------------------------------------
@pytest.mark.parametrize("name", POLICIES)
def test_empty_before_any_update(name):
    buffer = make_policy(name, 10)
    assert buffer.max_size == 10
    assert len(buffer.buffer) == 0
    assert buffer.buffer.targets.shape == (0,)
    assert class_counts(buffer) == {}


@pytest.mark.parametrize("bad", [-1, 2.5, True, "10"])
def test_max_size_must_be_a_non_negative_int(bad):
    with pytest.raises(ValueError, match="max_size"):
        ReservoirSamplingBuffer(bad)


@pytest.mark.parametrize("name", POLICIES)
def test_full_and_bounded_after_every_experience(name):
    """Avalanche's test_replay_balanced_memory / test_balancing without a training loop."""
    bench = fast_benchmark(return_task_id=True)
    for max_size in (25, 100):
        buffer, seen = make_policy(name, max_size), 0
        for exp in bench.train_stream:
            update(buffer, exp)
            seen += len(exp.dataset)
            assert len(buffer.buffer) == min(max_size, seen)
            if isinstance(buffer, BalancedExemplarsBuffer):
                assert sum(len(d) for d in buffer.buffer_datasets) == min(max_size, seen)


@pytest.mark.parametrize("name", POLICIES)
def test_contents_are_real_samples_of_seen_classes(name):
    bench = SplitDigits(5, return_task_id=True)
    source_x, source_y, source_t = {}, {}, {}
    buffer, seen_classes = make_policy(name, 40), set()
    for exp in bench.train_stream:
        x, y, t = exp.dataset.gather(torch.arange(len(exp.dataset)))
        for row, xi, yi, ti in zip(exp.dataset.storage_indices.tolist(), x, y, t, strict=True):
            source_x[row], source_y[row], source_t[row] = xi, int(yi), int(ti)
        seen_classes |= set(exp.classes_in_this_experience)
        update(buffer, exp)
        data = buffer.buffer
        x, y, t = data.gather(torch.arange(len(data)))
        rows = data.storage_indices.tolist()
        assert torch.equal(x, torch.stack([source_x[r] for r in rows]))
        assert y.tolist() == [source_y[r] for r in rows]
        assert t.tolist() == [source_t[r] for r in rows]
        assert set(y.tolist()) <= seen_classes
        assert len(set(rows)) == len(rows), "a sample is stored twice"


@pytest.mark.parametrize("name", POLICIES)
def test_many_small_updates_stay_one_view_on_the_stream(name):
    """Avalanche tests 3-4 (no nesting growth): no copy, no wrapper chain, after 200 updates."""
    stream_data = fast_benchmark().train_stream[0].dataset
    buffer = make_policy(name, 50)
    for i in range(200):
        chunk = stream_data.subset(torch.arange(i % 24 * 5, i % 24 * 5 + 5))
        update(buffer, SimpleNamespace(dataset=chunk, current_experience=i))
        assert len(buffer.buffer) <= 50
    data = buffer.buffer
    assert data.shares_storage(stream_data)
    assert len(data.storage_indices) == len(data) == 50


@pytest.mark.slow
@pytest.mark.parametrize("name", [p for p in POLICIES if p != "experience"])
def test_update_time_does_not_grow_with_the_number_of_updates(name):
    """Bounded number of groups here; ExperienceBalancedBuffer adds a group per update, so its
    update also pays O(number of groups) for the bookkeeping of every group."""
    stream_data = fast_benchmark().train_stream[0].dataset
    buffer = make_policy(name, 50)
    times = []
    for i in range(2000):
        chunk = stream_data.subset(torch.arange(i % 24 * 5, i % 24 * 5 + 5))
        start = time.perf_counter()
        update(buffer, SimpleNamespace(dataset=chunk, current_experience=i % 10))
        times.append(time.perf_counter() - start)
    early, late = sorted(times[100:300])[100], sorted(times[-200:])[100]
    assert late < 3 * early


# -- reservoir ------------------------------------------------------------------------------
def line_stream(n: int) -> ClassificationDataset:
    return ClassificationDataset(torch.arange(float(n))[:, None], torch.zeros(n, dtype=torch.long))


def chunks_of(data: ClassificationDataset, sizes: list[int]) -> list[ClassificationDataset]:
    bounds = torch.tensor([0, *sizes]).cumsum(0).tolist()
    return [data.subset(torch.arange(a, b)) for a, b in zip(bounds, bounds[1:], strict=False)]


def inclusion_pvalue(make_buffer, sizes: list[int], max_size: int, trials: int) -> float:
    """Chi-square p-value of "every sample is kept with probability max_size / N".

    Inclusion indicators of one trial are exchangeable with a fixed sum (max_size), so the
    per-sample counts over T trials have covariance T p(1-p) N/(N-1) (I - J/N): the scaled
    statistic below is chi-square with N - 1 degrees of freedom.
    """
    n = sum(sizes)
    chunks = chunks_of(line_stream(n), sizes)
    counts = torch.zeros(n)
    for trial in range(trials):
        torch.manual_seed(trial)
        buffer = make_buffer(max_size)
        for chunk in chunks:
            buffer.post_adapt(None, SimpleNamespace(dataset=chunk, current_experience=0))
        assert len(buffer.buffer) == max_size
        counts += torch.bincount(buffer.buffer.storage_indices, minlength=n)
    p = max_size / n
    stat = ((counts - trials * p) ** 2).sum() / (trials * p * (1 - p) * n / (n - 1))
    return float(chi2.sf(float(stat), n - 1))


def test_reservoir_is_uniform_over_the_whole_stream():
    """Chunking cannot matter: the buffer is the top keys of all samples (test below)."""
    sizes = [7, 13, 20, 10]
    assert inclusion_pvalue(ReservoirSamplingBuffer, sizes, max_size=10, trials=2000) > 1e-3


def test_uniformity_test_detects_recency_bias():
    """ParametricBuffer(groupby=None) keeps a uniform M of (old M + new): not a reservoir."""
    biased = inclusion_pvalue(ParametricBuffer, [10] * 5, max_size=10, trials=300)
    assert biased < 1e-6


def test_reservoir_keeps_the_top_keys_whatever_the_chunking():
    data = line_stream(40)
    for sizes in ([40], [3, 17, 20], [1] * 40, [25, 15]):
        chunks = chunks_of(data, sizes)
        torch.manual_seed(7)
        keys = torch.cat([torch.rand(len(c)) for c in chunks])
        expected = set(torch.topk(keys, 12).indices.tolist())
        torch.manual_seed(7)
        buffer = ReservoirSamplingBuffer(12)
        for chunk in chunks:
            buffer.update_from_dataset(chunk)
            assert len(buffer.buffer) <= 12
        assert rows_of(buffer.buffer) == expected


def test_reservoir_keeps_everything_below_capacity_and_ignores_empty_data():
    data = line_stream(8)
    buffer = ReservoirSamplingBuffer(10)
    buffer.update_from_dataset(data.subset(torch.arange(5)))
    buffer.update_from_dataset(data.empty())
    assert rows_of(buffer.buffer) == set(range(5))
    buffer.update_from_dataset(data.subset(torch.arange(5, 8)))
    assert rows_of(buffer.buffer) == set(range(8))


def test_reservoir_resize_shrinks_to_the_top_keys_and_grows_without_refill():
    data = line_stream(30)
    torch.manual_seed(3)
    keys = torch.rand(30)
    torch.manual_seed(3)
    buffer = ReservoirSamplingBuffer(10)
    buffer.update_from_dataset(data)
    buffer.resize(None, 4)
    assert buffer.max_size == 4
    assert rows_of(buffer.buffer) == set(torch.topk(keys, 4).indices.tolist())
    buffer.resize(None, 20)
    assert buffer.max_size == 20 and len(buffer.buffer) == 4
    buffer.update_from_dataset(line_stream(30).subset(torch.arange(10)))
    assert len(buffer.buffer) == 14


def test_reservoir_zero_capacity_stays_empty():
    buffer = ReservoirSamplingBuffer(0)
    buffer.update_from_dataset(line_stream(5))
    assert len(buffer.buffer) == 0


# -- balanced buffers -------------------------------------------------------------------------
def test_experience_balanced_lengths_table():
    buffer = ExperienceBalancedBuffer(25)
    tables = []
    for exp in fast_benchmark().train_stream:
        update(buffer, exp)
        tables.append(list(buffer.group_sizes().values()))
        assert list(buffer.buffer_groups) == list(range(len(tables)))
        for key, group in buffer.buffer_groups.items():
            assert rows_of(group.buffer) <= rows_of(fast_benchmark().train_stream[key].dataset)
    assert tables == [[25], [13, 12], [9, 8, 8], [7, 6, 6, 6], [5, 5, 5, 5, 5]]


def test_class_balanced_lengths_table():
    buffer = ClassBalancedBuffer(100)
    tables = []
    for exp in fast_benchmark().train_stream:
        update(buffer, exp)
        tables.append(list(buffer.group_sizes().values()))
        for label, group in buffer.buffer_groups.items():
            assert set(group.buffer.targets.tolist()) == {label}
    assert tables == [
        [50] * 2, [25] * 4, [17, 17, 17, 17, 16, 16], [13] * 4 + [12] * 4, [10] * 10,
    ]
    assert buffer.seen_classes == set(range(10))


def test_fixed_size_groups_never_exceed_max_size():
    bench = fast_benchmark()
    buffer = ExperienceBalancedBuffer(25, adaptive_size=False, num_experiences=4)
    for exp in bench.train_stream[:4]:
        update(buffer, exp)
    assert list(buffer.group_sizes().values()) == [6] * 4
    with pytest.raises(ValueError, match="num_experiences=4"):
        update(buffer, bench.train_stream[4])
    assert list(buffer.group_sizes().values()) == [6] * 4, "a refused update changed the buffer"

    classes = ClassBalancedBuffer(100, adaptive_size=False, total_num_classes=10)
    update(classes, bench.train_stream[0])
    assert list(classes.group_sizes().values()) == [10, 10]
    too_few = ClassBalancedBuffer(100, adaptive_size=False, total_num_classes=3)
    with pytest.raises(ValueError, match="4 groups but total_num_classes=3"):
        too_few.update_from_dataset(ClassificationDataset(torch.zeros(4, 1), torch.arange(4)))
    assert too_few.buffer_groups == {} and too_few.seen_classes == set()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"adaptive_size": True, "total_num_classes": 5},
         "total_num_classes=5 is not allowed: null when adaptive_size is true"),
        ({"adaptive_size": False},
         "total_num_classes=None is not allowed: a positive integer when adaptive_size"),
        ({"adaptive_size": False, "total_num_classes": 0},
         "total_num_classes=0 is not allowed: a positive integer"),
    ],
)
def test_balanced_argument_errors_are_clear(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClassBalancedBuffer(100, **kwargs)


def test_group_lengths_rules():
    assert ExperienceBalancedBuffer(10).get_group_lengths(3) == [4, 3, 3]
    assert ExperienceBalancedBuffer(10).get_group_lengths(0) == []
    assert ExperienceBalancedBuffer(10, False, 4).get_group_lengths(3) == [2, 2, 2]
    empty = ClassBalancedBuffer(10)
    empty.resize(None, 5)
    assert empty.max_size == 5 and len(empty.buffer) == 0


def test_remainder_goes_to_the_smallest_keys():
    for buffer in (ClassBalancedBuffer(32), ParametricBuffer(32, "class")):
        for exp in fast_benchmark().train_stream[:3]:
            update(buffer, exp)
        assert buffer.group_sizes() == {0: 6, 1: 6, 2: 5, 3: 5, 4: 5, 5: 5}


def test_class_balanced_recurring_class_is_sampled_uniformly():
    """A class seen again later feeds its reservoir (90 old + 10 new samples, 10 kept)."""
    data = ClassificationDataset(torch.arange(100.0)[:, None], torch.zeros(100, dtype=torch.long))
    old, new = data.subset(torch.arange(90)), data.subset(torch.arange(90, 100))
    from_new = {"reservoir": 0, "parametric": 0}
    trials = 400
    for trial in range(trials):
        torch.manual_seed(trial)
        balanced, parametric = ClassBalancedBuffer(10), ParametricBuffer(10, "class")
        for part in (old, new):
            balanced.update_from_dataset(part)
            parametric.post_adapt(None, SimpleNamespace(dataset=part))
        from_new["reservoir"] += len(rows_of(balanced.buffer) & set(range(90, 100)))
        from_new["parametric"] += len(rows_of(parametric.buffer) & set(range(90, 100)))
    assert abs(from_new["reservoir"] / trials - 1.0) < 0.2  # 10 * 10 / 100
    assert abs(from_new["parametric"] / trials - 5.0) < 0.5  # 10 * 10 / 20 (Avalanche's law)


def test_class_balanced_standalone_update_and_empty_data():
    buffer = ClassBalancedBuffer(6)
    data = ClassificationDataset(torch.arange(9.0)[:, None], torch.tensor([2, 0, 2, 1] * 2 + [0]))
    buffer.update_from_dataset(data.empty())
    assert buffer.buffer_groups == {}
    buffer.update_from_dataset(data)
    assert buffer.group_sizes() == {0: 2, 1: 2, 2: 2}
    assert class_counts(buffer) == {0: 2, 1: 2, 2: 2}


def test_balanced_resize_and_no_refill_after_grow():
    buffer = ExperienceBalancedBuffer(25)
    for exp in fast_benchmark().train_stream:
        update(buffer, exp)
    buffer.resize(None, 10)
    assert list(buffer.group_sizes().values()) == [2] * 5
    buffer.resize(None, 13)
    assert len(buffer.buffer) == 10 and buffer.max_size == 13


def test_joined_buffer_is_cached_and_follows_group_changes():
    buffer = ClassBalancedBuffer(20)
    bench = fast_benchmark()
    update(buffer, bench.train_stream[0])
    first = buffer.buffer
    assert buffer.buffer is first
    buffer.buffer_groups[0].resize(None, 3)
    assert len(buffer.buffer) == 13
    update(buffer, bench.train_stream[1])
    assert buffer.buffer is not first
    assert list(buffer.group_sizes().values()) == [3, 5, 5, 5], "evicted samples never return"
    joined = torch.cat([d.targets for d in buffer.buffer_datasets])
    assert torch.equal(buffer.buffer.targets, joined)
    with pytest.raises(AttributeError):
        buffer.buffer = first


# -- parametric buffer ------------------------------------------------------------------------
class ByRowDescending(ExemplarsSelectionStrategy):
    """Deterministic ranking (highest storage row first) that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def make_sorted_indices(self, strategy, data):
        self.calls += 1
        return torch.argsort(data.gather(torch.arange(len(data)))[0][:, 0], descending=True)


@pytest.mark.parametrize("groupby", ["class", None])
def test_parametric_ranks_once_per_group_and_keeps_the_best(groupby):
    selection = ByRowDescending()
    buffer = ParametricBuffer(30, groupby=groupby, selection_strategy=selection)
    seen: dict[int, set[int]] = {}
    for i, exp in enumerate(fast_benchmark().train_stream):
        before = selection.calls
        update(buffer, exp)
        groups_in_exp = 2 if groupby == "class" else 1
        assert selection.calls - before == groups_in_exp
        for label in exp.classes_in_this_experience:
            of_label = torch.nonzero(exp.dataset.targets == label).flatten()
            rows = set(exp.dataset.subset(of_label).storage_indices.tolist())
            seen.setdefault(label if groupby else 0, set()).update(rows)
        assert len(buffer.buffer) == 30
        for key, group in buffer.buffer_groups.items():
            best = sorted(seen[key], reverse=True)[: len(group.buffer)]
            assert group.buffer.storage_indices.tolist() == best, f"exp {i} group {key}"


def test_parametric_tutorial_example_on_split_digits():
    selection = RandomExemplarsSelectionStrategy()
    buffer = ParametricBuffer(30, groupby="class", selection_strategy=selection)
    for exp in SplitDigits(5).train_stream:
        update(buffer, exp)
        assert len(buffer.buffer) == 30
    assert sorted(buffer.buffer_groups) == list(range(10))
    assert set(buffer.group_sizes().values()) == {3}
    assert class_counts(buffer) == dict.fromkeys(range(10), 3)


@pytest.mark.parametrize("groupby", GROUPBYS)
def test_parametric_groupings_on_split_digits(groupby):
    """Avalanche's ParametricBufferTest.test_groupings, with the group keys checked."""
    bench = SplitDigits(5, return_task_id=True)
    buffer, classes = ParametricBuffer(10 if groupby != "class" else 20, groupby=groupby), []
    for i, exp in enumerate(bench.train_stream):
        update(buffer, exp)
        classes += exp.classes_in_this_experience
        expected_keys = {
            None: [0], "class": sorted(classes), "task": list(range(i + 1)),
            "experience": list(range(i + 1)),
        }[groupby]
        assert sorted(buffer.buffer_groups) == expected_keys
        assert len(buffer.buffer) == buffer.max_size
        for key, group in buffer.buffer_groups.items():
            if groupby == "class":
                assert set(group.buffer.targets.tolist()) == {key}
            if groupby in ("task", "experience"):
                assert set(group.buffer.targets_task_labels.tolist()) == {key}


def test_parametric_resize_keeps_the_best_ranked_prefix():
    buffer = ParametricBuffer(20, selection_strategy=ByRowDescending())
    update(buffer, fast_benchmark().train_stream[0])
    buffer.resize(None, 5)
    assert buffer.buffer.storage_indices.tolist() == [119, 118, 117, 116, 115]
    assert buffer.selection_strategy.calls == 1


def test_parametric_unknown_groupby_is_one_clear_line():
    with pytest.raises(ValueError) as err:
        ParametricBuffer(10, groupby="pixel")
    message = str(err.value)
    assert "\n" not in message
    for part in ("groupby", "'pixel'", "null", "class", "task", "experience"):
        assert part in message


def test_group_sizes_of_an_ungrouped_buffer_is_empty():
    buffer = ReservoirSamplingBuffer(5)
    update(buffer, fast_benchmark().train_stream[0])
    assert buffer.group_sizes() == {}
    assert sum(class_counts(buffer).values()) == 5
    assert class_counts(buffer.buffer) == class_counts(buffer)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_buffers_on_gpu_pick_the_same_samples_as_on_cpu():
    bench = fast_benchmark()
    picked = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        buffers = [ReservoirSamplingBuffer(30), ClassBalancedBuffer(30), ParametricBuffer(30)]
        for exp in bench.train_stream:
            moved = SimpleNamespace(dataset=exp.dataset.to(device), current_experience=0)
            for buffer in buffers:
                buffer.post_adapt(None, moved)
        assert all(b.buffer.device.type == device for b in buffers)
        picked[device] = [b.buffer.storage_indices.tolist() for b in buffers]
    assert picked["cpu"] == picked["cuda"]
