"""ClassificationDataset views: subsets compose, concat stays index-only, transforms batch."""

from __future__ import annotations

import torch

from cl_runner.benchmarks import SplitDigits
from cl_runner.data import ClassificationDataset


def make(n: int = 10) -> ClassificationDataset:
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    return ClassificationDataset(x, torch.arange(n) % 3, torch.arange(n) % 2)


def test_subset_of_subset_is_one_index_view():
    data = make()
    sub = data.subset([9, 7, 5, 3]).subset([1, 3])
    assert sub.storage_indices.tolist() == [7, 3]
    assert sub.shares_storage(data)
    x, y, t = sub.gather(torch.tensor([0, 1]))
    assert x.flatten().tolist() == [7.0, 3.0]
    assert y.tolist() == [7 % 3, 3 % 3] and t.tolist() == [1, 1]


def test_concat_same_storage_is_index_only_and_other_storage_materialises():
    data = make()
    joined = data.subset([1, 2]).concat(data.subset([8]))
    assert joined.shares_storage(data) and joined.storage_indices.tolist() == [1, 2, 8]
    other = make(4)
    mixed = data.subset([5]).concat(other.subset([3]))
    assert not mixed.shares_storage(data) and len(mixed) == 2
    assert mixed.targets.tolist() == [5 % 3, 3 % 3]
    assert mixed.gather(torch.arange(2))[0].flatten().tolist() == [5.0, 3.0]


def test_targets_task_set_and_getitem():
    data = make(6)
    assert data.targets.tolist() == [0, 1, 2, 0, 1, 2]
    tasks = data.task_set
    assert list(tasks) == [0, 1] and tasks[1].storage_indices.tolist() == [1, 3, 5]
    x, y, t = data[4]
    assert float(x) == 4.0 and int(y) == 1 and int(t) == 0


def test_train_transform_only_in_train_group():
    data = make(3)
    data.transform = lambda x: x * 10
    data.train_transform = lambda x: x + 1
    idx = torch.tensor([2])
    assert data.train().gather(idx)[0].item() == 21.0
    assert data.eval().gather(idx)[0].item() == 20.0


def test_split_digits_class_incremental_layout():
    bench = SplitDigits(n_experiences=5, seed=0)
    seen: set[int] = set()
    for exp in bench.train_stream:
        classes = set(exp.dataset.targets.unique().tolist())
        assert classes == set(exp.classes_in_this_experience) and len(classes) == 2
        assert not classes & seen
        seen |= classes
        assert exp.task_label == 0
    assert seen == set(range(10))
    assert sum(len(e.dataset) for e in bench.train_stream) + sum(
        len(e.dataset) for e in bench.test_stream) == 1797
    # fixed seed -> fixed order; another seed -> another order
    assert SplitDigits(seed=0).classes_order == bench.classes_order
    assert SplitDigits(seed=1).classes_order != bench.classes_order
    tasks = SplitDigits(seed=0, return_task_id=True)
    assert [e.task_label for e in tasks.train_stream] == [0, 1, 2, 3, 4]
    assert tasks.train_stream[3].dataset.targets_task_labels.unique().tolist() == [3]


def test_digits_reader_matches_scikit_learn():
    from sklearn.datasets import load_digits

    from cl_runner.benchmarks.digits import load_digits_tensors

    x, y = load_digits_tensors()
    ref = load_digits()
    assert torch.equal(x, torch.tensor(ref.data, dtype=torch.float32))
    assert torch.equal(y, torch.tensor(ref.target))
