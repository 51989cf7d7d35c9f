"""Users' own data: Avalanche's generic builders (expected values are Avalanche 0.6.0's, from
live runs on the same inputs) and the tensors-file / image-folder benchmarks of ``cl-run``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from cl_runner.benchmarks import (
    as_classification_dataset,
    dataset_benchmark,
    image_folder_benchmark,
    nc_benchmark,
    ni_benchmark,
    tensors_benchmark,
    tensors_file_benchmark,
)
from cl_runner.checks import SettingError
from cl_runner.config import validate
from cl_runner.data import ClassificationDataset
from tests.helpers import REPO, cl_run, compose_config, run_here
from tests.own_data import write_image_folder, write_tensors_file


def avalanche_style(labels: list[int], per: int = 3, offset: int = 0) -> TensorDataset:
    """A TensorDataset with ``targets`` (what Avalanche needs); x = the sample's index."""
    y = torch.tensor(labels).repeat(per)
    data = TensorDataset((offset + torch.arange(len(y))).float()[:, None], y)
    data.targets = y.tolist()
    return data


def xs(exp) -> list[int]:
    return exp.dataset.tensors()[0][:, 0].long().tolist()


# -- nc_benchmark ---------------------------------------------------------------------------------
def test_nc_benchmark_orders_classes_as_avalanche():
    data = avalanche_style(list(range(10)))
    bench = nc_benchmark(data, data, 5, task_labels=False, seed=0)
    assert bench.classes_order == [4, 1, 7, 5, 3, 9, 0, 8, 6, 2]
    assert [set(e.classes_in_this_experience) for e in bench.train_stream] == [
        {1, 4}, {5, 7}, {9, 3}, {0, 8}, {2, 6}]
    assert sorted(xs(bench.train_stream[0])) == [1, 4, 11, 14, 21, 24]
    assert nc_benchmark(data, data, 5, False, seed=1).classes_order == [
        5, 6, 1, 2, 0, 8, 9, 3, 7, 4]
    torch.manual_seed(123)  # seed=None: the global RNG, as in Avalanche
    assert nc_benchmark(data, data, 5, False).classes_order == [2, 0, 8, 1, 3, 7, 4, 9, 5, 6]
    assert nc_benchmark(data, data, 5, False, shuffle=False).classes_order == list(range(10))
    tasks = nc_benchmark(data, data, 5, True, seed=0)
    assert [e.task_label for e in tasks.test_stream] == [0, 1, 2, 3, 4]
    assert tasks.test_stream[2].dataset.targets_task_labels.unique().tolist() == [2]
    with pytest.raises(SettingError, match="n_experiences=3 is not allowed: a divisor"):
        nc_benchmark(data, data, 3, False)


def test_nc_benchmark_sparse_labels_remapping_and_per_exp_classes():
    data = avalanche_style([2, 9, 1, 17])
    bench = nc_benchmark(data, data, 2, task_labels=False, seed=0)
    assert bench.classes_order == [1, 2, 17, 9] and bench.n_classes == 4
    first = nc_benchmark(data, data, 2, True, seed=0, class_ids_from_zero_from_first_exp=True)
    assert first.classes_order == [0, 1, 2, 3]
    assert first.classes_order_original_ids == [1, 2, 17, 9]
    assert first.class_mapping[9] == 3 and first.class_mapping[17] == 2
    assert first.class_mapping[0] == -1
    assert sorted(first.train_stream[0].dataset.targets.tolist()) == [0, 0, 0, 1, 1, 1]
    each = nc_benchmark(data, data, 2, True, seed=0, class_ids_from_zero_in_each_exp=True)
    assert each.classes_order == [0, 1, 0, 1]
    assert [e.classes_in_this_experience for e in each.train_stream] == [[0, 1], [0, 1]]
    # experience 1 holds 17 and 9, in that order: 17 -> 0, 9 -> 1 (Avalanche's mapping)
    exp1 = each.train_stream[1].dataset
    assert dict(zip(xs(each.train_stream[1]), exp1.targets.tolist(), strict=True))[1] == 1
    with pytest.raises(SettingError):
        nc_benchmark(data, data, 2, False, class_ids_from_zero_in_each_exp=True,
                     class_ids_from_zero_from_first_exp=True)
    split = nc_benchmark(data, data, 3, False, seed=0, per_exp_classes={1: 2})
    assert [e.classes_in_this_experience for e in split.train_stream] == [[1], [2, 17], [9]]
    with pytest.raises(SettingError, match="per_exp_classes"):
        nc_benchmark(data, data, 3, False, seed=0, per_exp_classes={0: 3})


def test_nc_benchmark_one_dataset_per_experience():
    a, b, c = (avalanche_style(labels, per=2, offset=o)
               for labels, o in (([0, 1], 0), ([3, 5], 100), ([0, 1], 200)))
    bench = nc_benchmark([a, b, c], [a, b, c], 3, task_labels=False, seed=0,
                         one_dataset_per_exp=True)
    assert bench.classes_order == [4, 5, 0, 1, 2, 3]  # datasets in the order 2, 0, 1
    assert [xs(e) for e in bench.train_stream] == [[200, 201, 202, 203], [0, 1, 2, 3],
                                                   [100, 101, 102, 103]]
    assert bench.train_stream[2].dataset.targets.tolist() == [2, 3, 2, 3]  # 3 -> 2, 5 -> 3


def test_any_dataset_works_and_transforms_act_per_group():
    class Items(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return np.full((1, 2, 2), i, dtype=np.float32), i % 4

    from torchvision.transforms import Compose, Lambda, Normalize, ToTensor

    scale = Compose([ToTensor(), Normalize((1.0,), (2.0,))])  # ToTensor: samples are tensors
    shift = Lambda(lambda x: x + 100)  # an arbitrary callable runs per sample
    bench = nc_benchmark(Items(), Items(), 2, False, shuffle=False, train_transform=shift,
                         eval_transform=scale)
    data = bench.train_stream[0].dataset
    x_train = data.train().gather(torch.tensor([1]))[0]
    x_eval = data.eval().gather(torch.tensor([1]))[0]
    assert x_train.flatten().tolist() == [101.0] * 4 and x_eval.flatten().tolist() == [0.0] * 4
    assert bench.test_stream[0].dataset.transform_group == "eval"
    grouped = as_classification_dataset(Items(), {"train": shift, "eval": None})
    assert grouped.gather(torch.tensor([2]))[0].flatten().tolist() == [102.0] * 4
    assert grouped.eval().gather(torch.tensor([2]))[0].flatten().tolist() == [2.0] * 4
    tensors = nc_benchmark((torch.randn(6, 3), torch.tensor([0, 1, 2] * 2)),
                           ClassificationDataset(torch.randn(3, 3), torch.tensor([0, 1, 2])),
                           3, False)
    assert tensors.n_experiences == 3 and tensors.info.input_shape == (3,)


# -- ni_benchmark: Avalanche's exact draws --------------------------------------------------------
def blocks(counts: list[int], offset: int = 0) -> TensorDataset:
    y = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    data = TensorDataset((torch.arange(len(y)) + offset).float()[:, None], y)
    data.targets = y.tolist()
    return data


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"seed": 0}, [[10, 0, 8, 21, 3, 1, 14], [18, 9, 11, 19, 20, 13, 12, 7],
                   [17, 2, 6, 16, 15, 4, 5]]),
    ({"seed": 0, "balance_experiences": True}, [[4, 0, 9, 11, 17, 14, 18],
                                                [5, 3, 10, 13, 15, 19],
                                                [2, 6, 1, 8, 7, 16, 12, 20, 21]]),
    ({"shuffle": False}, [[0, 1, 2, 3, 4, 5, 6, 21], [7, 8, 9, 10, 11, 12, 13],
                          [14, 15, 16, 17, 18, 19, 20]]),
    ({"seed": 1}, [[2, 0, 12, 18, 1, 4, 17], [13, 20, 9, 15, 10, 8, 11],
                   [21, 14, 6, 5, 7, 19, 16, 3]]),
])
def test_ni_benchmark_assigns_samples_as_avalanche(kwargs, expected):
    train, test = blocks([7, 5, 6, 4]), blocks([2, 2, 2, 2], offset=1000)
    bench = ni_benchmark(train, test, n_experiences=3, **kwargs)
    assert [xs(e) for e in bench.train_stream] == expected
    assert len(bench.test_stream) == 1 and len(bench.test_stream[0].dataset) == 8


def test_ni_benchmark_task_labels_and_fixed_assignment():
    train, test = blocks([7, 5, 6, 4]), blocks([2, 2, 2, 2], offset=1000)
    tasks = ni_benchmark(train, test, 3, seed=0, task_labels=True)
    assert [e.task_labels for e in tasks.train_stream] == [[0], [1], [2]]
    assert tasks.test_stream[0].task_labels == [0]
    fixed = ni_benchmark(train, test, 2, fixed_exp_assignment=[[0, 1, 7], [2, 12, 18]])
    assert [xs(e) for e in fixed.train_stream] == [[0, 1, 7], [2, 12, 18]]
    with pytest.raises(SettingError, match="min_class_patterns_in_exp"):
        ni_benchmark(train, test, 3, min_class_patterns_in_exp=1)


# -- dataset_benchmark / tensors_benchmark --------------------------------------------------------
def test_tensors_benchmark_as_avalanche():
    x0, x1 = torch.randn(6, 2), torch.randn(4, 2)
    bench = tensors_benchmark([(x0, torch.tensor([0, 1] * 3)), (x1, torch.tensor([2, 3] * 2))],
                              [(x0[:2], torch.tensor([0, 1])), (x1[:2], torch.tensor([2, 3]))],
                              task_labels=[0, 1])
    assert [(e.task_labels, e.classes_in_this_experience, len(e.dataset))
            for e in bench.train_stream] == [([0], [0, 1], 6), ([1], [2, 3], 4)]
    assert [e.task_labels for e in bench.test_stream] == [[0], [1]]
    x, y, t = bench.train_stream[1].dataset[0]
    assert torch.equal(x, x1[0]) and int(y) == 2 and int(t) == 1
    with pytest.raises(SettingError, match="one label per experience"):
        tensors_benchmark([(x0, torch.zeros(6)), (x1, torch.zeros(4))], [], task_labels=[0])


def test_dataset_benchmark_keeps_order_task_labels_and_other_streams():
    a = ClassificationDataset(torch.randn(4, 1), torch.tensor([0, 1, 0, 1]), 3)
    b = avalanche_style([2, 3], per=2)
    valid = avalanche_style([0, 1], per=1)
    bench = dataset_benchmark([a, b], [b], other_streams_datasets={"valid": [valid]})
    assert [e.task_label for e in bench.train_stream] == [3, 0]
    assert [e.classes_in_this_experience for e in bench.train_stream] == [[0, 1], [2, 3]]
    assert len(bench.valid_stream) == 1 and set(bench.streams) == {"train", "test", "valid"}
    whole = dataset_benchmark([a, b], b, complete_test_set_only=True)
    assert len(whole.test_stream) == 1
    with pytest.raises(SettingError, match="train_target_transform"):
        dataset_benchmark([a], [a], train_target_transform=lambda y: y)


# -- the tensors file and the image folder --------------------------------------------------------
def test_tensors_files_npz_and_pt_give_the_same_benchmark(tmp_path):
    npz = tensors_file_benchmark(write_tensors_file(tmp_path), 5, seed=0)
    pt = tensors_file_benchmark(write_tensors_file(tmp_path, "data.pt"), 5, seed=0)
    assert npz.classes_order == pt.classes_order == [4, 1, 7, 5, 3, 9, 0, 8, 6, 2]
    for a, b in zip(npz.train_stream, pt.train_stream, strict=True):
        positions = torch.arange(len(a.dataset))
        assert all(torch.equal(u, v) for u, v in
                   zip(a.dataset.gather(positions), b.dataset.gather(positions), strict=True))
    x = npz.train_stream[0].dataset.storage_view().gather(torch.arange(120))[0]
    assert abs(float(x.mean())) < 1e-5 and float(x.std()) == pytest.approx(1.0, abs=1e-3)
    assert npz.info.n_classes == 10 and npz.info.input_shape == (8,)


def test_tensors_file_with_tasks_and_a_single_set(tmp_path):
    task = np.repeat(np.arange(5), 24)  # classes 2k, 2k+1 in task k
    path = write_tensors_file(tmp_path, train_task=task,
                              test_task=np.repeat(np.arange(5), 8))
    bench = tensors_file_benchmark(path, return_task_id=True)
    assert [e.task_label for e in bench.train_stream] == [0, 1, 2, 3, 4]
    assert [e.classes_in_this_experience for e in bench.test_stream][4] == [8, 9]
    x, y = np.zeros((40, 3), np.float32), np.repeat(np.arange(4), 10)
    np.savez(tmp_path / "one.npz", x=x, y=y)
    single = tensors_file_benchmark(tmp_path / "one.npz", 2, test_size=0.2, normalize=False)
    assert sum(len(e.dataset) for e in single.test_stream) == 8


@pytest.mark.parametrize(("make", "overrides", "message"), [
    (None, ["benchmark.path=/no/such.npz"], "benchmark.path='/no/such.npz' is not allowed: an "
                                            "existing file"),
    ("bad_keys", [], "a file with the keys train_x, train_y, test_x, test_y"),
    ("npz", ["benchmark.n_experiences=3"], "benchmark.n_experiences=3 is not allowed: a "
                                           "divisor of the 10 classes"),
    ("pt", ["benchmark.n_experiences=4"], "a divisor of the 10 classes"),
    ("missing_class", [], "all present in the training labels (missing: [3])"),
    ("npz", ["benchmark.fixed_class_order=[0,1,12]"], "unknown: [12]"),
])
def test_tensors_file_validation_is_one_setting_error(tmp_path, make, overrides, message):
    path = {"npz": lambda: write_tensors_file(tmp_path),
            "pt": lambda: write_tensors_file(tmp_path, "data.pt"),
            "bad_keys": lambda: np.savez(tmp_path / "bad.npz", inputs=np.zeros((2, 2))),
            "missing_class": lambda: np.savez(tmp_path / "gap.npz", x=np.zeros((4, 2)),
                                              y=np.array([0, 1, 2, 4])),
            None: lambda: None}[make]()
    path = {"bad_keys": tmp_path / "bad.npz", "missing_class": tmp_path / "gap.npz"}.get(
        make, path)
    args = [f"benchmark.path={path}"] if path else []
    cfg = compose_config(tmp_path, "benchmark=tensors", "benchmark.n_experiences=5", *args,
                         *overrides)
    with pytest.raises(SettingError) as err:
        validate(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_image_folder_decodes_once_into_the_cache(tmp_path, monkeypatch):
    from cl_runner.benchmarks import files

    root = write_image_folder(tmp_path / "images", n_classes=4)
    bench = image_folder_benchmark(root, 2, seed=0, size=8, cache_root=tmp_path)
    assert bench.info.input_shape == (3, 8, 8) and bench.info.n_classes == 4
    assert [len(e.dataset) for e in bench.train_stream] == [6, 6]
    assert sum(len(e.dataset) for e in bench.test_stream) == 4
    red = files.read_image_folder(root).classes.index("class_00")
    x, y, _ = bench.train_stream[0].dataset.eval().gather(torch.arange(6))
    assert x.dtype == torch.float32 and x.shape == (6, 3, 8, 8)
    monkeypatch.setattr(files, "_decode", lambda *a: pytest.fail("decoded again"))
    again = image_folder_benchmark(root, 2, seed=0, size=8, cache_root=tmp_path)
    assert torch.equal(again.train_stream[0].dataset.gather(torch.arange(6))[0], x)
    assert red == 0
    monkeypatch.undo()
    grey = write_image_folder(tmp_path / "flat", n_classes=2, per_class=4)
    (grey / "test").rename(tmp_path / "unused")  # no test folder: class folders at the root
    for folder in (grey / "train").iterdir():
        folder.rename(grey / folder.name)
    (grey / "train").rmdir()
    single = image_folder_benchmark(grey, 1, channels=1, size=5, test_size=0.25,
                                    cache_root=tmp_path)
    assert single.info.input_shape == (1, 5, 5)
    assert [len(e.dataset) for e in single.test_stream] == [2]


def test_image_folder_validation(tmp_path):
    root = write_image_folder(tmp_path / "images", n_classes=4, per_class=1)
    (root / "train" / "class_03" / "img_0.png").unlink()
    for overrides, message in (
        ([f"benchmark.root={tmp_path / 'nothing'}"], "is not allowed: an existing folder"),
        ([f"benchmark.root={root}"], "empty: ['class_03']"),
    ):
        cfg = compose_config(tmp_path, "benchmark=image_folder", "benchmark.n_experiences=2",
                             *overrides)
        with pytest.raises(SettingError, match="benchmark.root") as err:
            validate(cfg)
        assert message in str(err.value)
    write_image_folder(tmp_path / "ok", n_classes=4, per_class=1)
    cfg = compose_config(tmp_path, "benchmark=image_folder", f"benchmark.root={tmp_path / 'ok'}",
                         "benchmark.n_experiences=3")
    with pytest.raises(SettingError, match="a divisor of the 4 classes"):
        validate(cfg)


PROBE = """
import json, sys
from cl_runner import cli
codes = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["cl-run", *argv]
    try:
        cli.main()
    except SystemExit as exc:
        codes.append(exc.code)
print(json.dumps({"codes": codes, "torch": "torch._C" in sys.modules}))
"""


@pytest.mark.slow
def test_cl_run_on_own_data_end_to_end_and_config_errors_without_torch(tmp_path):
    npz = write_tensors_file(tmp_path)
    pt = write_tensors_file(tmp_path, "data.pt")
    images = write_image_folder(tmp_path / "images", n_classes=4, per_class=2)
    bad = [["benchmark=tensors", f"benchmark.path={pt}", "benchmark.n_experiences=3"],
           ["benchmark=tensors", f"benchmark.path={tmp_path / 'none.pt'}"],
           ["benchmark=image_folder", f"benchmark.root={images}", "benchmark.n_experiences=3"]]
    env = {"CL_RUNNER_OUTPUT_ROOT": str(tmp_path / "out"), "PYTHONPATH": str(REPO),
           "PATH": "/usr/bin"}
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(bad)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"codes": [2, 2, 2],
                                                                "torch": False}
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("cl-run: error: benchmark.") for e in errors)
    common = ["tracking=none", "strategy.train_epochs=1", "buffer.max_size=20",
              f"paths.data_root={tmp_path / 'data'}"]
    ran = cl_run(tmp_path / "runs", "benchmark=tensors", f"benchmark.path={npz}",
                 "benchmark.n_experiences=5", *common)
    assert "final average accuracy" in ran.stdout
    result = run_here(tmp_path / "here", "benchmark=image_folder", f"benchmark.root={images}",
                      "benchmark.n_experiences=2", "benchmark.return_task_id=true",
                      "model=multihead_mlp", "benchmark.size=8", *common)
    assert result.matrix.n == 2 and 0.0 <= result.final_average_accuracy <= 1.0
