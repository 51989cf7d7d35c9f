"""A ported Avalanche 0.6 script works with only its imports changed.

1. Every public name shared with Avalanche accepts Avalanche's positional order and keyword
   names (the table below is Avalanche 0.6.0's signatures, read from the installed package);
   our extra parameters are keyword-only.
2. Our datasets work with a plain ``torch.utils.data.DataLoader``, samplers, workers,
   ``Subset`` and ``ConcatDataset``, giving the same ``(x, y, t)`` batches as our gather.
3. Avalanche's standalone metrics and metric helpers give hand-computed values;
   ``EvaluationPlugin`` takes ``loggers=None``, ``collect_all`` and ``strict_checks``.
4. The facts the README's "Differences from Avalanche" states about buffers.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

from cl_runner.benchmarks import SplitDigits, tensors_benchmark
from cl_runner.buffers import ClassBalancedBuffer, ParametricBuffer
from cl_runner.data import (
    ClassificationDataset,
    GroupBalancedDataLoader,
    ReplayDataLoader,
    TaskBalancedDataLoader,
)
from cl_runner.evaluation import (
    BWT,
    Accuracy,
    ElapsedTime,
    EvaluationPlugin,
    ExperienceForgetting,
    Forgetting,
    LossMetric,
    StreamForgetting,
    TaskAwareAccuracy,
    TaskAwareLoss,
    TextLogger,
    accuracy_metrics,
    bwt_metrics,
    forgetting_metrics,
    loss_metrics,
    timing_metrics,
)
from cl_runner.models import SimpleMLP
from cl_runner.training import Naive

# -- 1. signatures --------------------------------------------------------------------------------
# Avalanche 0.6.0, `inspect.signature` of each name (``self`` dropped). ``name=`` has a default;
# after ``*`` keyword-only; ``**kwargs`` must be accepted too (torch DataLoader arguments).
# Strategies are keyword-only in Avalanche but accept the same order positionally (legacy
# calls); rows marked LEGACY are checked in that order. Strategies' ``**kwargs`` (what
# Avalanche forwards to the template: ``peval_mode``) are explicit parameters here.
AVALANCHE = {
    # benchmarks
    "SplitMNIST": "n_experiences, *, return_task_id=, seed=, fixed_class_order=, shuffle=, "
                  "class_ids_from_zero_in_each_exp=, class_ids_from_zero_from_first_exp=, "
                  "train_transform=, eval_transform=, dataset_root=",
    "SplitFMNIST": "n_experiences, *, first_batch_with_half_classes=, return_task_id=, seed=, "
                   "fixed_class_order=, shuffle=, class_ids_from_zero_in_each_exp=, "
                   "class_ids_from_zero_from_first_exp=, train_transform=, eval_transform=, "
                   "dataset_root=",
    "PermutedMNIST": "n_experiences, *, return_task_id=, seed=, train_transform=, "
                     "eval_transform=, dataset_root=",
    "SplitCIFAR10": "n_experiences, *, first_exp_with_half_classes=, return_task_id=, seed=, "
                    "fixed_class_order=, shuffle=, class_ids_from_zero_in_each_exp=, "
                    "class_ids_from_zero_from_first_exp=, train_transform=, eval_transform=, "
                    "dataset_root=",
    "SplitCIFAR100": "n_experiences, *, first_exp_with_half_classes=, return_task_id=, seed=, "
                     "fixed_class_order=, shuffle=, class_ids_from_zero_in_each_exp=, "
                     "class_ids_from_zero_from_first_exp=, train_transform=, eval_transform=, "
                     "dataset_root=",
    "nc_benchmark": "train_dataset, test_dataset, n_experiences, task_labels, *, shuffle=, "
                    "seed=, fixed_class_order=, per_exp_classes=, "
                    "class_ids_from_zero_from_first_exp=, class_ids_from_zero_in_each_exp=, "
                    "one_dataset_per_exp=, train_transform=, eval_transform=, "
                    "reproducibility_data=",
    "ni_benchmark": "train_dataset, test_dataset, n_experiences, *, task_labels=, shuffle=, "
                    "seed=, balance_experiences=, min_class_patterns_in_exp=, "
                    "fixed_exp_assignment=, train_transform=, eval_transform=, "
                    "reproducibility_data=",
    "dataset_benchmark": "train_datasets, test_datasets, *, other_streams_datasets=, "
                         "complete_test_set_only=, train_transform=, train_target_transform=, "
                         "eval_transform=, eval_target_transform=, other_streams_transforms=",
    "tensors_benchmark": "train_tensors, test_tensors, *, other_streams_tensors=, task_labels, "
                         "complete_test_set_only=, train_transform=, train_target_transform=, "
                         "eval_transform=, eval_target_transform=, other_streams_transforms=",
    "split_online_stream": "original_stream, experience_size, shuffle=, drop_last=, "
                           "experience_split_strategy=, access_task_boundaries=, seed=",
    "as_classification_dataset": "dataset, transform_groups=",
    "OnlineCLExperience": "*, dataset, origin_experience, is_first_subexp=, is_last_subexp=, "
                          "sub_stream_length=, access_task_boundaries=",
    # loaders
    "GroupBalancedDataLoader": "datasets, oversample_small_groups=, batch_size=, "
                               "distributed_sampling=, **kwargs",
    "TaskBalancedDataLoader": "data, batch_size=, oversample_small_groups=, "
                              "distributed_sampling=, **kwargs",
    "ReplayDataLoader": "data, memory=, oversample_small_tasks=, batch_size=, batch_size_mem=, "
                        "task_balanced_dataloader=, distributed_sampling=, **kwargs",
    "GroupBalancedInfiniteDataLoader": "datasets, batch_size=, distributed_sampling=, **kwargs",
    # storage policies and selection
    "ExemplarsBuffer": "max_size",
    "ReservoirSamplingBuffer": "max_size",
    "BalancedExemplarsBuffer": "max_size, adaptive_size=, total_num_groups=",
    "ExperienceBalancedBuffer": "max_size, adaptive_size=, num_experiences=",
    "ClassBalancedBuffer": "max_size, adaptive_size=, total_num_classes=",
    "ParametricBuffer": "max_size, groupby=, selection_strategy=",
    "ExemplarsSelectionStrategy": "",
    "RandomExemplarsSelectionStrategy": "",
    "FeatureBasedExemplarsSelectionStrategy": "model, layer_name",
    "HerdingSelectionStrategy": "model, layer_name",
    "ClosestToCenterSelectionStrategy": "model, layer_name",
    # training
    "SupervisedTemplate": "LEGACY model, optimizer, criterion=, train_mb_size=, train_epochs=, "
                          "eval_mb_size=, device=, plugins=, evaluator=, eval_every=, "
                          "peval_mode=",
    "Naive": "LEGACY model, optimizer, criterion=, train_mb_size=, train_epochs=, "
             "eval_mb_size=, device=, plugins=, evaluator=, eval_every=",
    "Replay": "LEGACY model, optimizer, criterion, mem_size=, train_mb_size=, train_epochs=, "
              "eval_mb_size=, device=, plugins=, evaluator=, eval_every=",
    "ER_ACE": "LEGACY model, optimizer, criterion=, mem_size=, batch_size_mem=, train_mb_size=, "
              "train_epochs=, eval_mb_size=, device=, plugins=, evaluator=, eval_every=, "
              "peval_mode=",
    "DER": "LEGACY model, optimizer, criterion=, mem_size=, batch_size_mem=, alpha=, beta=, "
           "train_mb_size=, train_epochs=, eval_mb_size=, device=, plugins=, evaluator=, "
           "eval_every=, peval_mode=",
    "GDumb": "LEGACY model, optimizer, criterion, mem_size=, train_mb_size=, train_epochs=, "
             "eval_mb_size=, device=, plugins=, evaluator=, eval_every=",
    "ICaRL": "LEGACY feature_extractor, classifier, optimizer, memory_size, buffer_transform, "
             "fixed_memory, train_mb_size=, train_epochs=, eval_mb_size=, device=, plugins=, "
             "evaluator=, eval_every=",
    "AGEM": "LEGACY model, optimizer, criterion, patterns_per_exp, sample_size=, train_mb_size=, "
            "train_epochs=, eval_mb_size=, device=, plugins=, evaluator=, eval_every=",
    "BiC": "LEGACY model, optimizer, criterion, mem_size=, val_percentage=, T=, stage_2_epochs=, "
           "lamb=, lr=, train_mb_size=, train_epochs=, eval_mb_size=, device=, plugins=, "
           "evaluator=, eval_every=",
    "MIR": "LEGACY model, optimizer, criterion, mem_size, subsample, batch_size_mem=, "
           "train_mb_size=, train_epochs=, eval_mb_size=, device=, plugins=, evaluator=, "
           "eval_every=",
    "GSS_greedy": "LEGACY model, optimizer, criterion, mem_size=, mem_strength=, input_size=, "
                  "train_mb_size=, train_epochs=, eval_mb_size=, device=, plugins=, evaluator=, "
                  "eval_every=",
    "SCR": "LEGACY model, optimizer, augmentations=, mem_size=, temperature=, train_mb_size=, "
           "batch_size_mem=, train_epochs=, eval_mb_size=, device=, plugins=, evaluator=, "
           "eval_every=, peval_mode=",
    "OnlineNaive": "LEGACY model, optimizer, criterion=, train_passes=, train_mb_size=, "
                   "eval_mb_size=, device=, plugins=, evaluator=, eval_every=",
    "AGEMPlugin": "patterns_per_experience, sample_size",
    "GDumbPlugin": "mem_size=",
    "MIRPlugin": "batch_size_mem, mem_size=, subsample=",
    "GSS_greedyPlugin": "mem_size=, mem_strength=, input_size=",
    "BiCPlugin": "mem_size=, batch_size=, batch_size_mem=, task_balanced_dataloader=, "
                 "storage_policy=, val_percentage=, T=, stage_2_epochs=, lamb=, lr=, "
                 "num_workers=, verbose=",
    "NCMClassifier": "normalize=",
    "SCRModel": "feature_extractor, projection",
    "TrainEvalModel": "feature_extractor, train_classifier, eval_classifier",
    "SupervisedTemplate.train": "experiences, eval_streams=, **kwargs",
    "SupervisedTemplate.eval": "exp_list, **kwargs",
    "ReplayPlugin": "mem_size=, batch_size=, batch_size_mem=, task_balanced_dataloader=, "
                    "storage_policy=",
    "SupervisedPlugin": "",
    "BasePlugin": "",
    "Clock": "",
    "PeriodicEval": "eval_every=, peval_mode=, do_initial=",
    "EvaluationPlugin": "*metrics, loggers=, collect_all=, strict_checks=",
    # metrics
    "Accuracy": "", "TaskAwareAccuracy": "", "LossMetric": "", "TaskAwareLoss": "",
    "Forgetting": "", "BWT": "", "ExperienceForgetting": "", "StreamForgetting": "",
    "ExperienceBWT": "", "StreamBWT": "",
    "Accuracy.update": "predicted_y, true_y",
    "TaskAwareAccuracy.update": "predicted_y, true_y, task_labels",
    "TaskAwareAccuracy.result": "task_label=",
    "TaskAwareAccuracy.reset": "task_label=",
    "LossMetric.update": "loss, patterns",
    "TaskAwareLoss.update": "loss, patterns, task_label",
    "Forgetting.update": "k, v, initial=",
    "Forgetting.result_key": "k",
    "Forgetting.update_initial": "k, v",
    "Forgetting.update_last": "k, v",
    "BWT.update": "k, v, initial=",
    "BWT.result_key": "k",
    "accuracy_metrics": "*, minibatch=, epoch=, epoch_running=, experience=, stream=, "
                        "trained_experience=",
    "loss_metrics": "*, minibatch=, epoch=, epoch_running=, experience=, stream=",
    "forgetting_metrics": "*, experience=, stream=",
    "bwt_metrics": "*, experience=, stream=",
    "timing_metrics": "*, minibatch=, epoch=, epoch_running=, experience=, stream=",
    # loggers and models
    "InteractiveLogger": "",
    "TextLogger": "file=",
    "SimpleMLP": "num_classes=, input_size=, hidden_size=, hidden_layers=, drop_rate=",
    "SimpleCNN": "num_classes=",
    "MultiHeadClassifier": "in_features, initial_out_features=, masking=, mask_value=",
}
# parameters Avalanche's strategies take through **kwargs from SupervisedTemplate
PASSED_TO_TEMPLATE = {"peval_mode"}
OUR_MODULES = ["cl_runner.benchmarks", "cl_runner.benchmarks.online", "cl_runner.data",
               "cl_runner.buffers", "cl_runner.training", "cl_runner.training.strategy",
               "cl_runner.evaluation", "cl_runner.models"]


def parse(spec: str) -> tuple[bool, list[tuple[str, str, bool]]]:
    """(legacy positional, [(name, kind, has_default)]) of a table row."""
    legacy = spec.startswith("LEGACY")
    spec = spec.removeprefix("LEGACY").strip()
    params, kind = [], "positional"
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if part == "*":
            kind = "keyword"
        elif part.startswith("**"):
            params.append((part[2:], "var_keyword", True))
        elif part.startswith("*"):
            params.append((part[1:], "var_positional", True))
            kind = "keyword"
        else:
            params.append((part.rstrip("="), "positional" if legacy else kind, part.endswith("=")))
    return legacy, params


def ours(name: str):
    owner, _, attr = name.partition(".")
    for module in OUR_MODULES:
        obj = getattr(importlib.import_module(module), owner, None)
        if obj is not None:
            return getattr(obj, attr) if attr else obj
    return None


def test_the_table_covers_the_names_this_task_owns():
    missing = [n for n in AVALANCHE if ours(n) is None]
    assert missing == []


@pytest.mark.parametrize("name", sorted(AVALANCHE))
def test_signature_accepts_avalanches_positional_order_and_keywords(name):
    legacy, expected = parse(AVALANCHE[name])
    obj = ours(name)
    params = list(inspect.signature(obj).parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    by_name = {p.name: p for p in params}
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    their_positional = [n for n, kind, _ in expected if kind == "positional"]
    # the same positional order, and no positional parameter of ours after Avalanche's
    assert positional[: len(their_positional)] == their_positional, name
    extra = [p for p in positional[len(their_positional):] if p not in PASSED_TO_TEMPLATE]
    assert extra == [], f"{name}: our extra parameters {extra} must be keyword-only"
    for pname, kind, has_default in expected:
        if kind == "var_positional":
            assert any(p.kind is p.VAR_POSITIONAL for p in params), name
        elif kind == "var_keyword":
            assert any(p.kind is p.VAR_KEYWORD for p in params), name
        else:
            assert pname in by_name, f"{name} lacks Avalanche's parameter {pname!r}"
            if has_default:  # a call that leaves it out must work here too
                assert by_name[pname].default is not inspect.Parameter.empty, (name, pname)
    # no required parameter of ours that Avalanche's calls would not pass
    theirs = {n for n, _, _ in expected}
    required = [p.name for p in params if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in theirs]
    assert required == [], name


def test_task_balanced_loader_second_positional_is_the_batch_size():
    data = ClassificationDataset(torch.arange(40.0)[:, None], torch.zeros(40, dtype=torch.long),
                                 torch.tensor([0] * 30 + [1] * 10))
    loader = TaskBalancedDataLoader(data, 16)  # Avalanche: batch 16, no oversampling
    # 8 + 8 per batch; task 0 (30 samples) sets 4 batches, task 1 (10) is not oversampled
    assert [len(b[0]) for b in loader] == [16, 10, 8, 6]
    grouped = GroupBalancedDataLoader([data, data], False, 8, True)
    assert [len(b[0]) for b in grouped][0] == 8
    replay = ReplayDataLoader(data, data, False, 4, 2, False, True)
    assert [len(b[0]) for b in replay][0] == 6


# -- 2. a plain torch DataLoader ------------------------------------------------------------------
def traced(n: int = 23, transform=None) -> ClassificationDataset:
    """x[:, 0] is the storage row, so a batch shows which samples it holds."""
    x = torch.stack([torch.arange(n, dtype=torch.float32), torch.randn(n)], dim=1)
    return ClassificationDataset(x, torch.arange(n) % 5, torch.arange(n) % 2,
                                 train_transform=transform)


def assert_same_samples(batch, data: ClassificationDataset) -> None:
    """``batch`` is a list [x, y, t] whose rows are exactly ``data``'s gathered samples."""
    assert isinstance(batch, list) and len(batch) == 3
    x, y, t = batch
    rows = x[:, 0].long()
    gx, gy, gt = data.eval().gather(rows) if data.transform_group == "eval" else data.gather(rows)
    assert torch.equal(x, gx) and torch.equal(y, gy) and torch.equal(t, gt)
    assert y.dtype == torch.int64 and t.dtype == torch.int64 and x.dtype == torch.float32


@pytest.mark.parametrize("batch_size", [1, 4, 7, 23, 50])
def test_plain_dataloader_batches_match_gather(batch_size):
    data = traced()
    batches = list(DataLoader(data, batch_size=batch_size))
    assert [len(b[0]) for b in batches][0] == min(batch_size, 23)
    rows = torch.cat([b[0][:, 0] for b in batches]).long()
    assert rows.tolist() == list(range(23))
    for batch in batches:
        assert_same_samples(batch, data)


def test_dataloader_shuffle_samplers_and_single_items():
    data = traced()
    gen = torch.Generator().manual_seed(0)
    shuffled = list(DataLoader(data, batch_size=5, shuffle=True, generator=gen))
    assert sorted(torch.cat([b[0][:, 0] for b in shuffled]).long().tolist()) == list(range(23))
    for sampler in (SubsetRandomSampler([3, 9, 12]), WeightedRandomSampler(torch.ones(23), 8)):
        for batch in DataLoader(data, batch_size=3, sampler=sampler):
            assert_same_samples(batch, data)
    batches = DataLoader(data, batch_sampler=BatchSampler(SequentialSampler(data), 6, True))
    assert [len(b[0]) for b in batches] == [6, 6, 6]
    x, y, t = data[4]  # one sample: three tensors, as torch's default collation expects
    assert x.shape == (2,) and y.shape == () and int(y) == 4 and int(t) == 0
    assert_same_samples([x[None], y[None], t[None]], data)


def test_dataloader_with_workers_gives_the_same_batches():
    data = traced(transform=lambda x: x * 1.0)
    plain = list(DataLoader(data, batch_size=4))
    workers = list(DataLoader(data, batch_size=4, num_workers=2))
    assert len(plain) == len(workers)
    for a, b in zip(plain, workers, strict=True):
        assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def test_subset_and_concat_dataset_and_an_experience():
    data = traced()
    subset = Subset(data, [5, 2, 20])
    (batch,) = list(DataLoader(subset, batch_size=3))
    assert batch[0][:, 0].long().tolist() == [5, 2, 20]
    assert_same_samples(batch, data)
    other = traced(7)
    joined = ConcatDataset([data, other])
    batches = list(DataLoader(joined, batch_size=10))
    assert sum(len(b[0]) for b in batches) == 30 and len(batches) == 3
    assert batches[2][0][:, 0].long().tolist() == list(range(20, 23)) + list(range(7))
    exp = SplitDigits(5, seed=0).train_stream[0]
    x, y, t = next(iter(DataLoader(exp.dataset, batch_size=4)))
    assert x.shape == (4, 64) and set(y.tolist()) <= set(exp.classes_in_this_experience)
    assert t.tolist() == [0, 0, 0, 0]


def test_dataloader_applies_the_group_transforms():
    data = traced(transform=lambda x: x + 1000.0)
    x_train = next(iter(DataLoader(data, batch_size=23)))[0]
    x_eval = next(iter(DataLoader(data.eval(), batch_size=23)))[0]
    assert torch.equal(x_train, x_eval + 1000.0)


# -- 3. standalone metrics by hand ----------------------------------------------------------------
def test_accuracy_by_hand():
    acc = Accuracy()
    assert acc.result() == 0.0
    acc.update(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]))
    assert acc.result() == pytest.approx(2 / 3)
    logits = torch.tensor([[5.0, 0.0], [0.0, 3.0], [1.0, 0.5]])  # argmax [0, 1, 0]
    acc.update(logits, torch.tensor([0, 0, 0]))
    assert acc.result() == pytest.approx(4 / 6)
    acc.update([1, 2], [1, 3])  # lists work
    assert acc.result() == pytest.approx(5 / 8)
    with pytest.raises(ValueError, match="Size mismatch"):
        acc.update(torch.tensor([1]), torch.tensor([1, 2]))
    with pytest.raises(ZeroDivisionError):
        acc.update(torch.tensor([]), torch.tensor([]))
    acc.reset()
    assert acc.result() == 0.0
    one_hot = torch.eye(3)[[2, 0]]  # one-hot targets are labels too
    acc.update(torch.tensor([2, 1]), one_hot)
    assert acc.result() == 0.5


def test_task_aware_accuracy_by_hand():
    acc = TaskAwareAccuracy()
    assert acc.result() == {}
    acc.update(torch.tensor([0, 1]), torch.tensor([0, 0]), 0)
    acc.update(torch.tensor([3, 3, 4]), torch.tensor([3, 2, 4]), torch.tensor([1, 1, 2]))
    assert acc.result() == {0: 0.5, 1: 0.5, 2: 1.0}
    assert acc.result(task_label=7) == {7: 0.0}
    assert acc.result() == {0: 0.5, 1: 0.5, 2: 1.0, 7: 0.0}  # Avalanche's defaultdict
    acc.reset(1)
    assert acc.result() == {0: 0.5, 1: 0.0, 2: 1.0, 7: 0.0}
    with pytest.raises(ValueError, match="Task label type"):
        acc.update(torch.tensor([0]), torch.tensor([0]), 0.0)
    acc.reset()
    assert acc.result() == {}


def test_loss_metrics_by_hand():
    loss = LossMetric()
    loss.update(torch.tensor(2.0), 4)
    loss.update(torch.tensor([0.0, 1.0]), 2)
    assert loss.result() == pytest.approx((2 * 4 + 0.5 * 2) / 6)
    loss.update(torch.tensor(9.0), 0)  # no patterns: no weight
    assert loss.result() == pytest.approx(1.5)
    loss.reset()
    assert loss.result() == 0.0
    per_task = TaskAwareLoss()
    for value, n, task in ((1.0, 2, 0), (3.0, 2, 1), (3.0, 2, 0)):
        per_task.update(torch.tensor(value), n, task)
    assert per_task.result() == {0: 2.0, 1: 3.0}
    assert per_task.result_task_label(1) == {1: 3.0}


def test_forgetting_and_bwt_by_hand():
    f = Forgetting()
    f.update(0, 0.9, initial=True)
    f.update(1, 0.8, initial=True)
    assert f.result() == {} and f.result_key(0) is None
    f.update(0, 0.6)
    assert f.result() == pytest.approx({0: 0.3})
    f.update(0, 0.5, initial=True)  # initial is overwritten
    assert f.result() == pytest.approx({0: -0.1})
    f.update(2, 0.3)  # last only: no value
    assert 2 not in f.result()
    f.reset_last()
    assert f.result() == {} and f.initial == {0: 0.5, 1: 0.8}
    b = BWT()
    b.update_initial(0, 0.9)
    b.update_last(0, 0.6)
    b.update(1, 0.5, initial=True)
    b.update(1, 0.7)
    assert b.result() == pytest.approx({0: -0.3, 1: 0.2})
    assert b.result_key(0) == pytest.approx(-0.3) and b.result_key(5) is None
    ints = BWT()
    ints.update(0, 1, initial=True)
    ints.update(0, 0)
    assert ints.result() == {0: -1}
    with pytest.raises(ValueError):  # as in Avalanche: only a float converts
        ints.result_key(0)
    exp = ExperienceForgetting()
    exp.update(0, 0.9, initial=True)
    exp.update(0, 0.5)
    assert exp.result() == pytest.approx({0: 0.4}) and exp.result_key(0) == pytest.approx(0.4)
    assert StreamForgetting().result() == 0.0


def test_elapsed_time():
    t = ElapsedTime()
    assert t.result() == 0.0
    t.update()
    assert t.result() == 0.0
    t.update()
    assert t.result() >= 0.0
    t.reset()
    assert t.result() == 0.0


def test_helpers_return_lists_of_avalanches_metrics():
    assert accuracy_metrics() == [] and forgetting_metrics() == [] and timing_metrics() == []
    assert len(accuracy_metrics(minibatch=True, epoch=True, epoch_running=True, experience=True,
                                stream=True, trained_experience=True)) == 6
    assert [type(m).__name__ for m in forgetting_metrics(experience=True, stream=True)] == [
        "ExperienceForgetting", "StreamForgetting"]
    assert [type(m).__name__ for m in bwt_metrics(experience=True, stream=True)] == [
        "ExperienceBWT", "StreamBWT"]


def toy_benchmark():
    """Avalanche's toy (notes, live/toy.py): 2 experiences of 2 classes, 20 samples each."""
    g = torch.Generator().manual_seed(0)

    def make(classes):
        y = torch.tensor(classes).repeat_interleave(10)
        return torch.randn(len(y), 8, generator=g) + y[:, None].float(), y

    train = [make([0, 1]), make([2, 3])]
    test = [make([0, 1]), make([2, 3])]
    return tensors_benchmark(train, test, task_labels=[0, 0])


def test_plugin_metric_names_emission_counts_and_stream_forgetting():
    bench = toy_benchmark()
    torch.manual_seed(0)
    model = SimpleMLP(num_classes=4, input_size=8, hidden_size=8)
    evaluator = EvaluationPlugin(
        accuracy_metrics(minibatch=True, epoch=True, epoch_running=True, experience=True,
                         stream=True, trained_experience=True),
        loss_metrics(minibatch=True, epoch=True, epoch_running=True, experience=True,
                     stream=True),
        timing_metrics(minibatch=True, epoch=True, epoch_running=True, experience=True,
                       stream=True),
        forgetting_metrics(experience=True, stream=True), bwt_metrics(experience=True,
                                                                      stream=True),
        loggers=None,
    )
    strategy = Naive(model, torch.optim.SGD(model.parameters(), lr=0.1), train_mb_size=10,
                     train_epochs=2, evaluator=evaluator)
    strategy.train(bench.train_stream[0])
    first = strategy.eval(bench.test_stream)
    prefix = "{}/train_phase/train_stream/Task000"
    for base in ("Top1_Acc_MB", "Top1_Acc_Epoch", "Top1_RunningAcc_Epoch", "Loss_MB",
                 "Loss_Epoch", "RunningLoss_Epoch", "Time_MB", "Time_Epoch",
                 "RunningTime_Epoch"):
        assert prefix.format(base) in first, base
    for base in ("Top1_Acc_Exp", "Loss_Exp", "Time_Exp"):
        assert f"{base}/eval_phase/test_stream/Task000/Exp001" in first
    for base in ("Top1_Acc_Stream", "Loss_Stream", "Time_Stream",
                 "Accuracy_On_Trained_Experiences"):
        assert f"{base}/eval_phase/test_stream/Task000" in first
    # Avalanche emits the stream forgetting even when no experience has a value yet
    assert first["StreamForgetting/eval_phase/test_stream"] == 0.0
    assert first["StreamBWT/eval_phase/test_stream"] == 0.0
    assert not any(k.startswith("ExperienceForgetting") for k in first)
    trained = first["Accuracy_On_Trained_Experiences/eval_phase/test_stream/Task000"]
    assert trained == first["Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000"]
    history = evaluator.get_all_metrics()
    xs, _ = history[prefix.format("Top1_Acc_MB")]
    assert xs == [0, 1, 2, 3]  # 2 epochs x 2 iterations, x read before the clock advances
    assert history[prefix.format("Top1_Acc_Epoch")][0] == [2, 4]
    strategy.train(bench.train_stream[1])
    second = strategy.eval(bench.test_stream)
    forgetting = second["ExperienceForgetting/eval_phase/test_stream/Task000/Exp000"]
    acc0 = first["Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000"]
    now0 = second["Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000"]
    assert forgetting == pytest.approx(acc0 - now0)
    assert second["ExperienceBWT/eval_phase/test_stream/Task000/Exp000"] == pytest.approx(
        -forgetting)
    assert second["StreamForgetting/eval_phase/test_stream"] == pytest.approx(forgetting)
    assert "ExperienceForgetting/eval_phase/test_stream/Task000/Exp001" not in second


def test_evaluation_plugin_loggers_collect_all_and_warning(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EvaluationPlugin()  # no metrics: nothing to warn about
        EvaluationPlugin(loggers=None)
    with pytest.warns(UserWarning, match="No loggers specified"):
        quiet = EvaluationPlugin(accuracy_metrics(stream=True), loggers=[])
    assert quiet.loggers == []
    single = EvaluationPlugin(accuracy_metrics(stream=True), loggers=TextLogger())
    made = EvaluationPlugin(accuracy_metrics(stream=True), loggers=lambda: [TextLogger()])
    assert len(single.loggers) == 1 and len(made.loggers) == 1
    bench = toy_benchmark()
    model = SimpleMLP(num_classes=4, input_size=8, hidden_size=8)
    last_only = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[TextLogger()],
                                 collect_all=False)
    strategy = Naive(model, torch.optim.SGD(model.parameters(), lr=0.1), train_mb_size=10,
                     evaluator=last_only)
    metrics = strategy.eval(bench.test_stream)
    assert "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001" in metrics
    assert last_only.get_all_metrics() == {}
    assert "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000 = " in capsys.readouterr().out
    last_only.reset_last_metrics()
    assert last_only.get_last_metrics() == {}


def test_strict_checks_refuse_a_partial_stream_as_avalanche_does():
    bench = SplitDigits(5, seed=0)
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=8)
    evaluator = EvaluationPlugin(accuracy_metrics(stream=True), loggers=[], strict_checks=True)
    strategy = Naive(model, torch.optim.SGD(model.parameters(), lr=0.1), train_mb_size=64,
                     evaluator=evaluator)
    strategy.eval(bench.test_stream)
    strategy.eval(bench.train_stream)
    strategy.eval(bench.test_stream[0])  # one experience: its origin is the whole stream
    strategy.eval([bench.test_stream[3]])
    for part in (bench.test_stream[:2], bench.test_stream[1:]):
        with pytest.raises(ValueError, match="must be the same of the entire evaluation"):
            strategy.eval(part)
    relaxed = EvaluationPlugin(accuracy_metrics(stream=True), loggers=[])
    Naive(model, torch.optim.SGD(model.parameters(), lr=0.1), evaluator=relaxed).eval(
        bench.test_stream[:2])


# -- 4. the README's facts about buffers ----------------------------------------------------------
def test_remainder_slot_and_empty_group_lengths_as_the_readme_says():
    x = torch.randn(40, 4)
    y = torch.tensor([2] * 20 + [9] * 20)
    exp = SimpleNamespace(dataset=ClassificationDataset(x, y), current_experience=0)
    for buffer in (ClassBalancedBuffer(31), ParametricBuffer(31, groupby="class")):
        buffer.update(SimpleNamespace(experience=exp))
        # ours: the smallest key gets the extra slot (Avalanche: 9, its set order)
        assert buffer.group_sizes() == {2: 16, 9: 15}
        assert buffer.get_group_lengths(0) == []  # Avalanche raises IndexError


def test_multi_head_classifier_adapts_and_masks_as_avalanche():
    from cl_runner.models import MultiHeadClassifier

    torch.manual_seed(0)
    heads = MultiHeadClassifier(4, masking=True, mask_value=-1000)
    x = torch.randn(3, 4)
    assert heads(x, torch.zeros(3, dtype=torch.long)).shape == (3, 2)  # never adapted: no mask
    heads.adaptation(SimpleNamespace(classes_in_this_experience=[3, 2], task_labels=[1]))
    out = heads(x, torch.tensor([0, 1, 1]))
    assert out.shape == (3, 4)  # task 1's head: classes up to 3
    assert out[1:, :2].eq(-1000).all() and not out[1:, 2:].eq(-1000).any()
    assert out[0, 2:].eq(-1000).all()  # task 0's narrower head, padded
    with pytest.raises(ValueError, match="no head"):
        heads(x, torch.tensor([0, 5, 5]))
