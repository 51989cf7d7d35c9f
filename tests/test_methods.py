"""The rehearsal methods (ER-ACE, DER/DER++, GDumb, iCaRL, A-GEM, BiC): each loss term and
update rule against hand-computed values on tiny models, their config declarations, and
in-process runs that crash and resume to the uninterrupted accuracy matrix."""

from __future__ import annotations

import copy
import inspect
import itertools
import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F  # noqa: N812

from cl_runner.benchmarks import SplitDigits
from cl_runner.buffers import ClassBalancedBuffer
from cl_runner.checks import SettingError
from cl_runner.config import validate
from cl_runner.core import SupervisedPlugin
from cl_runner.data import ClassificationDataset
from cl_runner.models import SimpleMLP
from cl_runner.models.networks import BiasLayer, NCMClassifier
from cl_runner.recording import RunFolder, read_metrics
from cl_runner.run import run_job
from cl_runner.training import (
    AGEM,
    DER,
    ER_ACE,
    AGEMPlugin,
    BiC,
    DERpp,
    GDumb,
    ICaRL,
)
from cl_runner.training.agem import project_gradient, project_gradients_
from cl_runner.training.bic import distillation_loss
from cl_runner.training.er_ace import asymmetric_cross_entropy
from cl_runner.training.icarl import class_means, icarl_herding_order
from tests.crash_plugins import CrashMidExperience
from tests.helpers import compose_config, run_here


@pytest.fixture(autouse=True)
def _one_thread_no_charts(monkeypatch):
    """Tiny models run fastest on one thread; charts are not what these tests check."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(RunFolder, "_write_charts", lambda self, measured: None)
    yield
    torch.set_num_threads(threads)


def digits(seed: int = 0):
    return SplitDigits(n_experiences=5, seed=seed)


def mlp(seed: int = 0, hidden: int = 16) -> SimpleMLP:
    torch.manual_seed(seed)
    return SimpleMLP(num_classes=10, input_size=64, hidden_size=hidden, drop_rate=0.0)


EVENTS = ("before_training_exp", "before_backward", "after_backward",
          "after_eval_iteration")


class Recorder(SupervisedPlugin):
    """Keeps what callbacks saw: ``seen[event]`` lists ``probe(strategy)`` per call."""

    def __init__(self, **probes) -> None:
        self.probes, self.seen = probes, {k: [] for k in probes}

    def _record(self, event: str, strategy) -> None:
        if event in self.probes:
            self.seen[event].append(self.probes[event](strategy))


for _event in EVENTS:
    setattr(Recorder, _event,
            (lambda e: lambda self, strategy, **kw: self._record(e, strategy))(_event))


# -- library: Avalanche's names, arguments and order ---------------------------------------
AVALANCHE_ORDER = {
    ER_ACE: ["model", "optimizer", "criterion", "mem_size", "batch_size_mem", "train_mb_size",
             "train_epochs", "eval_mb_size", "device", "plugins", "evaluator", "eval_every",
             "peval_mode"],
    DER: ["model", "optimizer", "criterion", "mem_size", "batch_size_mem", "alpha", "beta",
          "train_mb_size", "train_epochs", "eval_mb_size", "device", "plugins", "evaluator",
          "eval_every", "peval_mode"],
    GDumb: ["model", "optimizer", "criterion", "mem_size", "train_mb_size", "train_epochs",
            "eval_mb_size", "device", "plugins", "evaluator", "eval_every"],
    ICaRL: ["feature_extractor", "classifier", "optimizer", "memory_size", "buffer_transform",
            "fixed_memory", "train_mb_size", "train_epochs", "eval_mb_size", "device",
            "plugins", "evaluator", "eval_every"],
    AGEM: ["model", "optimizer", "criterion", "patterns_per_exp", "sample_size",
           "train_mb_size", "train_epochs", "eval_mb_size", "device", "plugins", "evaluator",
           "eval_every"],
    BiC: ["model", "optimizer", "criterion", "mem_size", "val_percentage", "T",
          "stage_2_epochs", "lamb", "lr", "train_mb_size", "train_epochs", "eval_mb_size",
          "device", "plugins", "evaluator", "eval_every"],
}
DEFAULTS = {ER_ACE: {"mem_size": 200, "batch_size_mem": 10, "eval_mb_size": 1},
            DER: {"mem_size": 200, "batch_size_mem": None, "alpha": 0.1, "beta": 0.5,
                  "eval_mb_size": 1},
            GDumb: {"mem_size": 200, "eval_mb_size": None},
            AGEM: {"sample_size": 64, "eval_mb_size": None},
            BiC: {"mem_size": 200, "val_percentage": 0.1, "T": 2, "stage_2_epochs": 200,
                  "lamb": -1, "lr": 0.1, "eval_mb_size": None},
            ICaRL: {"eval_mb_size": None}}


@pytest.mark.parametrize("cls", list(AVALANCHE_ORDER), ids=lambda c: c.__name__)
def test_constructors_take_avalanches_arguments_in_its_order(cls):
    params = inspect.signature(cls).parameters
    positional = [n for n, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional[:len(AVALANCHE_ORDER[cls])] == AVALANCHE_ORDER[cls]
    extra = [n for n in params if n not in AVALANCHE_ORDER[cls] and n != "peval_mode"]
    assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in extra)
    for name, value in DEFAULTS[cls].items():
        assert params[name].default == value, name


# -- ER-ACE ----------------------------------------------------------------------------------
def test_ace_masks_exactly_the_classes_absent_from_the_incoming_batch():
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 1.0, -1.0, 1.0]], requires_grad=True)
    targets = torch.tensor([1, 3])  # classes 0 and 2 are absent
    loss = asymmetric_cross_entropy(logits, targets)
    by_hand = (-math.log(math.exp(2) / (math.exp(2) + math.exp(4)))
               - math.log(math.exp(1) / (math.exp(1) + math.exp(1)))) / 2
    assert loss.item() == pytest.approx(by_hand)
    loss.backward()
    assert (logits.grad[:, [0, 2]] == 0).all() and (logits.grad[:, [1, 3]] != 0).all()


def test_er_ace_loss_is_half_memory_ce_plus_half_masked_incoming_ce():
    bench = digits()
    model = mlp()
    rec = Recorder(before_backward=lambda s: (
        s.mb_output.detach().clone(), s.mb_y.clone(), None if s.mb_buffer_out is None else
        s.mb_buffer_out.detach().clone(), s.mb_buffer_y, s.loss.item(), dict(s.loss_terms)))
    strategy = ER_ACE(model, torch.optim.SGD(model.parameters(), lr=0.1), mem_size=40,
                      batch_size_mem=8, train_mb_size=32, evaluator=None, plugins=[rec])
    strategy.train(bench.train_stream[0])
    assert all(mem is None for _, _, mem, *_ in rec.seen["before_backward"])  # exp 0: none
    # the memory already holds the incoming experience's classes, class-balanced
    assert sorted(torch.unique(strategy.storage_policy.buffer.targets).tolist()) == sorted(
        bench.train_stream[0].classes_in_this_experience)
    rec.seen["before_backward"].clear()
    strategy.train(bench.train_stream[1])
    for out, y, mem_out, mem_y, loss, terms in rec.seen["before_backward"]:
        assert len(mem_y) == 8
        present = torch.unique(y)
        masked = out.clone()
        masked[:, [c for c in range(10) if c not in present]] = -torch.inf
        by_hand = (F.cross_entropy(mem_out, mem_y) + F.cross_entropy(masked, y)) / 2
        assert loss == pytest.approx(by_hand.item(), rel=1e-5)
        assert sum(v.item() for v in terms.values()) == pytest.approx(loss, rel=1e-5)
    assert set(terms) == {"memory_ce", "incoming_ace"}


# -- DER / DER++ ----------------------------------------------------------------------------
def test_der_stores_the_logits_of_storage_time_and_keeps_them_through_resize_and_state():
    bench = digits()
    model = mlp()
    strategy = DER(model, torch.optim.SGD(model.parameters(), lr=0.1), mem_size=30,
                   train_mb_size=32, evaluator=None)
    strategy.train(bench.train_stream[0])
    buffer = strategy.storage_policy
    stored = buffer.buffer
    model.eval()
    with torch.no_grad():
        now = model(stored.eval().gather(torch.arange(len(stored)))[0])
    assert torch.allclose(stored.payload["logits"], now, rtol=0, atol=1e-6)
    assert buffer.nbytes() == stored.sample_nbytes * 30 + 30 * 10 * 4  # logits counted
    strategy.train(bench.train_stream[1])  # the model moves on; old samples keep old logits
    old_classes = bench.train_stream[0].classes_in_this_experience
    data = buffer.buffer
    kept = torch.isin(data.targets, torch.tensor(old_classes))
    rows = data.storage_indices[kept]
    first = dict(zip(stored.storage_indices.tolist(), stored.payload["logits"], strict=True))
    assert all(torch.equal(first[r], v) for r, v in
               zip(rows.tolist(), data.payload["logits"][kept], strict=True))
    buffer.resize(None, 10)
    small = buffer.buffer
    again = ClassBalancedBuffer(10)
    again.load_state_dict(buffer.state_dict())
    both = dict(zip(data.storage_indices.tolist(), data.payload["logits"], strict=True))
    for view in (small, again.buffer):
        assert len(view) == 10 and torch.equal(view.storage_indices, small.storage_indices)
        assert all(torch.equal(both[r], v) for r, v in
                   zip(view.storage_indices.tolist(), view.payload["logits"], strict=True))


def test_derpp_loss_prepends_the_memory_batch_for_one_forward():
    bench = digits()
    model = mlp()
    alpha, beta = 0.3, 0.7
    rec = Recorder(before_backward=lambda s: (
        s.mb_output.detach().clone(), s.mb_y.clone(), s.batch_logits, s.loss.item(),
        dict(s.loss_terms)))
    strategy = DERpp(model, torch.optim.SGD(model.parameters(), lr=0.1), mem_size=40,
                     batch_size_mem=8, alpha=alpha, beta=beta, train_mb_size=32,
                     evaluator=None, plugins=[rec])
    strategy.train(bench.train_stream[0])
    assert all(logits is None for _, _, logits, *_ in rec.seen["before_backward"])
    rec.seen["before_backward"].clear()
    strategy.train(bench.train_stream[1])
    for out, y, logits, loss, terms in rec.seen["before_backward"]:
        assert len(out) == len(y) > 8 and logits.shape == (8, 10)
        by_hand = (F.cross_entropy(out[8:], y[8:]) + alpha * ((out[:8] - logits) ** 2).mean()
                   + beta * F.cross_entropy(out[:8], y[:8]))
        assert loss == pytest.approx(by_hand.item(), rel=1e-5)
        assert set(terms) == {"incoming_ce", "logit_replay", "memory_ce"}
        # the memory part comes from earlier classes, the incoming part from this experience
        assert set(y[:8].tolist()) <= set(bench.train_stream[0].classes_in_this_experience)
        assert set(y[8:].tolist()) <= set(bench.train_stream[1].classes_in_this_experience)


# -- GDumb --------------------------------------------------------------------------------
def test_gdumb_keeps_a_class_balanced_memory_and_restarts_from_the_initial_weights():
    bench = digits()
    model = mlp()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    rec = Recorder(before_training_exp=lambda s: (
        {k: v.clone() for k, v in s.model.state_dict().items()}, len(s.optimizer.state),
        len(s.adapted_dataset)))
    strategy = GDumb(model, optimizer, mem_size=30, train_mb_size=8, evaluator=None,
                     plugins=[rec])
    for i in range(3):
        strategy.train(bench.train_stream[i])
        counts = torch.bincount(strategy.storage_policy.buffer.targets, minlength=10)
        seen = [c for e in bench.train_stream[:i + 1] for c in e.classes_in_this_experience]
        assert sorted(counts[seen].tolist()) == sorted([30 // len(seen) + 1] * (30 % len(seen))
                                                       + [30 // len(seen)] * (
                                                           len(seen) - 30 % len(seen)))
    for weights, n_state, n_train in rec.seen["before_training_exp"]:
        assert all(torch.equal(weights[k], initial[k]) for k in initial)  # reset each time
        assert n_state == 0 and n_train == 30  # fresh optimizer; memory only
    assert not torch.equal(model.state_dict()["classifier.weight"], initial["classifier.weight"])
    assert len(optimizer.param_groups[0]["params"]) == 4  # same parameters, reset in place


# -- iCaRL --------------------------------------------------------------------------------
def test_ncm_predicts_the_class_whose_exemplar_mean_is_nearest():
    ncm = NCMClassifier()
    ncm.replace_class_means(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    x = torch.tensor([[3.0, 0.4], [0.1, 2.0], [-1.0, -1.0]])
    scores = ncm(x)
    assert scores.argmax(1).tolist() == [0, 1, 2]  # the zero mean is at distance 1
    unit = x[0] / x[0].norm()
    assert scores[0, 1].item() == pytest.approx(-math.dist(unit.tolist(), [0.0, 1.0]), rel=1e-5)
    assert scores[2, 2].item() == pytest.approx(-1.0)


def test_icarl_class_means_and_herding_by_hand():
    identity = nn.Identity()
    x = torch.tensor([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, -5.0]])
    data = ClassificationDataset(x, torch.tensor([0, 0, 1, 1]))
    means = class_means(identity, data, 3, 2, "cpu")
    s = 1 / math.sqrt(2)
    expected = torch.tensor([[s, s], [s, (s - 1)], [0.0, 0.0]])
    expected[1] /= expected[1].norm()
    assert torch.allclose(means, expected, atol=1e-6)
    # herding: mu = mean of the normalised rows; w = mu; argmax w.f, then w += mu - f
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.96, 0.28]])
    # w=mu: scores (.65, .43, .75) -> 2; w=2mu-f2: (.35, .57, .49) -> 1; w=3mu-f2-f1: -> 0
    assert icarl_herding_order(f * 3, 2).tolist() == [2, 1]
    assert icarl_herding_order(f, 3).tolist() == [2, 1, 0]


def test_icarl_trains_with_distillation_targets_and_classifies_by_exemplar_means():
    bench = digits()
    model = mlp()
    rec = Recorder(before_backward=lambda s: (
        s.mb_output.detach(), s.mb_y, s.old_logits, list(s.icarl.old_classes), s.loss.item()))
    strategy = ICaRL(model.features, model.classifier,
                     torch.optim.SGD(model.parameters(), lr=0.1), memory_size=40,
                     buffer_transform=None, fixed_memory=True, train_mb_size=32,
                     eval_mb_size=64, evaluator=None, plugins=[rec])
    strategy.train(bench.train_stream[0])
    strategy.train(bench.train_stream[1])
    old = sorted(bench.train_stream[0].classes_in_this_experience)
    for out, y, old_logits, old_classes, loss in rec.seen["before_backward"][-3:]:
        assert old_classes == old
        target = F.one_hot(y, 10).float()
        target[:, old] = torch.sigmoid(old_logits[:, old])
        by_hand = F.binary_cross_entropy(torch.sigmoid(out), target)
        assert loss == pytest.approx(by_hand.item(), rel=1e-4)
    counts = torch.bincount(strategy.storage_policy.buffer.targets, minlength=10)
    assert counts.sum() == 40 and (counts[counts > 0] == 10).all()
    # evaluation: nearest exemplar mean on normalised features
    exemplars = strategy.storage_policy.buffer
    means = class_means(model.features, exemplars, 10, 64, "cpu")
    assert torch.allclose(strategy.model.eval_classifier.class_means, means)
    test = bench.test_stream[0].dataset
    x, _, _ = test.gather(torch.arange(len(test)))
    strategy.model.eval()
    with torch.no_grad():
        features = F.normalize(model.features(x), dim=1)
        nearest = torch.cdist(features, means).argmin(1)
        assert torch.equal(strategy.model(x).argmax(1), nearest)


# -- A-GEM --------------------------------------------------------------------------------
def test_agem_projection_by_hand():
    g_ref = torch.tensor([-1.0, 1.0])
    projected = project_gradient(torch.tensor([1.0, 0.0]), g_ref)
    assert projected.tolist() == pytest.approx([0.5, 0.5])  # g - (g.r / r.r) r
    assert torch.dot(projected, g_ref).item() == pytest.approx(0.0)
    assert project_gradient(torch.tensor([0.0, 2.0]), g_ref).tolist() == [0.0, 2.0]  # no conflict
    assert project_gradient(torch.tensor([1.0, 2.0]), torch.zeros(2)).tolist() == [1.0, 2.0]
    # the same per parameter, in place: g = ([1], [0]), g_ref = ([-1], [1])
    grads, refs = [torch.tensor([1.0]), torch.tensor([0.0])], [torch.tensor([-1.0]),
                                                               torch.tensor([1.0])]
    project_gradients_(grads, refs, torch.tensor(2.0))
    assert [g.item() for g in grads] == pytest.approx([0.5, 0.5])


def test_agem_steps_never_conflict_with_the_reference_gradient():
    bench = digits()
    model = mlp()

    def grads_and_reference(strategy):
        ref = strategy.agem.reference_gradients
        flat = torch.cat([p.grad.reshape(-1) for p in strategy.model.parameters()])
        return None if ref is None else (torch.dot(flat, ref).item(), ref.clone())

    rec = Recorder(after_backward=grads_and_reference)
    strategy = AGEM(model, torch.optim.SGD(model.parameters(), lr=0.1), None, 20, 12,
                    train_mb_size=32, evaluator=None, plugins=[rec])
    for exp in bench.train_stream[:3]:
        strategy.train(exp)
    first = -(-len(bench.train_stream[0].dataset) // 32)  # steps without memory
    assert all(s is None for s in rec.seen["after_backward"][:first])
    seen = rec.seen["after_backward"][first:]
    assert seen and all(dot >= -1e-6 for dot, _ in seen)
    # Avalanche's memory: patterns_per_exp samples of every experience, never dropped
    assert strategy.storage_policy.group_sizes() == {0: 20, 1: 20, 2: 20}


def test_agem_reference_batch_walks_each_experience_group_in_order():
    bench = digits()
    plugin = AGEMPlugin(10, 8)
    from types import SimpleNamespace
    for exp in bench.train_stream[:2]:
        plugin.storage_policy.update(SimpleNamespace(experience=exp))
    plugin._make_sampler()
    groups = plugin.storage_policy.buffer_datasets
    x, y, _ = next(plugin.buffer_dliter)
    assert torch.equal(y, torch.cat([groups[0].targets[:4], groups[1].targets[:4]]))


# -- BiC ----------------------------------------------------------------------------------
def test_bic_bias_layer_changes_only_the_newest_classes_logits():
    layer = BiasLayer([3, 1])
    with torch.no_grad():
        layer.alpha.fill_(2.0)
        layer.beta.fill_(-0.5)
    z = torch.tensor([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.0, 1.0, 2.0]])
    out = layer(z)
    assert out[:, [0, 2]].tolist() == z[:, [0, 2]].tolist()
    assert out[:, [1, 3]].tolist() == (2 * z[:, [1, 3]] - 0.5).tolist()


def test_bic_distillation_softmax_over_the_batch_or_over_the_classes():
    new = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    old = torch.tensor([[2.0, 0.0], [0.0, 0.0]])

    def by_hand(q):
        logp = torch.log_softmax(new / 2, dim=1)
        return -(q * logp).sum(1).mean().item()

    batch = torch.softmax(old / 2, dim=0)  # Avalanche's: columns sum to one
    assert distillation_loss(new, old, 2, "batch").item() == pytest.approx(by_hand(batch))
    classes = torch.softmax(old / 2, dim=1)  # the paper's
    assert distillation_loss(new, old, 2, "classes").item() == pytest.approx(by_hand(classes))


def test_bic_holds_out_a_share_of_each_class_and_corrects_the_newest_classes():
    bench = digits()
    model = mlp()
    outputs = []
    rec = Recorder(before_backward=lambda s: (s.loss.item(), dict(s.loss_terms)),
                   after_eval_iteration=lambda s: outputs.append(s.mb_output))
    strategy = BiC(model, torch.optim.SGD(model.parameters(), lr=0.1), mem_size=100,
                   val_percentage=0.2, stage_2_epochs=30, train_mb_size=32, evaluator=None,
                   plugins=[rec])
    exp0, exp1 = bench.train_stream[0], bench.train_stream[1]
    strategy.train(exp0)
    holdout = {c: len(b.buffer) for c, b in strategy.bic.val_buffer.items()}
    assert holdout == dict.fromkeys(exp0.classes_in_this_experience, 10)
    assert len(strategy.storage_policy.buffer) == 100
    stored = set(strategy.storage_policy.buffer.storage_indices.tolist())
    held = {r for b in strategy.bic.val_buffer.values() for r in b.buffer.storage_indices.tolist()}
    assert not stored & held  # the holdout is on top of the memory
    assert strategy.bic.bias_layer is None
    assert all(not terms for _, terms in rec.seen["before_backward"])
    rec.seen["before_backward"].clear()
    strategy.train(exp1)
    assert sorted(len(b.buffer) for b in strategy.bic.val_buffer.values()) == [5] * 4
    assert strategy.bic.bias_layer.clss.tolist() == sorted(exp1.classes_in_this_experience)
    for loss, terms in rec.seen["before_backward"]:
        assert set(terms) == {"classification", "distillation"}
        assert loss == pytest.approx(sum(v.item() for v in terms.values()), rel=1e-5)
    test = bench.test_stream[0].dataset
    x, _, _ = test.gather(torch.arange(len(test)))
    model.eval()
    with torch.no_grad():
        expected = strategy.bic.bias_layer(model(x))
    outputs.clear()
    strategy.eval(bench.test_stream[0])
    assert torch.allclose(torch.cat(outputs), expected)


# -- cl-run: configs and refusals ---------------------------------------------------------
METHODS = ["er_ace", "der", "derpp", "gdumb", "icarl", "agem", "bic"]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_composes_with_its_memory_size_from_the_buffer_group(tmp_path, method):
    cfg = compose_config(tmp_path, f"strategy={method}", "buffer.max_size=123",
                         "benchmark=split_fmnist", f"paths.data_root={tmp_path}")
    validate(cfg)
    assert cfg.buffer.max_size == 123 and cfg.buffer._target_


@pytest.mark.parametrize(("overrides", "message"), [
    (["strategy=der", "buffer=none"], "buffer='none' is not allowed: a storage policy"),
    (["strategy=icarl", "buffer=reservoir", "selection=random"],
     "buffer='reservoir' is not allowed: a class-grouped memory"),
    (["strategy=icarl", "buffer=parametric", "buffer.groupby=experience"],
     "buffer='parametric' is not allowed: a class-grouped memory"),
    (["strategy=agem", "buffer=class_balanced"],
     "buffer='class_balanced' is not allowed: an experience-grouped memory"),
    (["strategy=icarl", "benchmark.return_task_id=true", "model=multihead_mlp"],
     "strategy='icarl' is not allowed: a class-incremental stream"),
    (["strategy=bic", "benchmark.return_task_id=true", "model=multihead_mlp"],
     "strategy='bic' is not allowed: a class-incremental stream"),
    (["strategy=der", "+strategy.mem_size=10"], "strategy.mem_size=10 is not allowed: left unset"),
    (["strategy=derpp", "strategy.alpha=-1"], "strategy.alpha=-1 is not allowed"),
    (["strategy=bic", "strategy.kd_softmax=rows"], "strategy.kd_softmax='rows' is not allowed"),
    (["strategy=agem", "strategy.sample_size=2"], "strategy.sample_size=2 is not allowed"),
    (["strategy=gdumb", "strategy.reinit=zero"], "strategy.reinit='zero' is not allowed"),
])
def test_combinations_that_make_no_sense_are_refused_in_one_line(tmp_path, overrides, message):
    cfg = compose_config(tmp_path, *overrides)
    with pytest.raises(SettingError, match=message.replace("(", r"\(")):
        validate(cfg)


def test_memory_kind_comes_from_the_buffer_group(tmp_path):
    derpp = compose_config(tmp_path, "strategy=derpp", "buffer=reservoir")
    assert derpp.buffer._target_.endswith("ReservoirSamplingBuffer")
    validate(derpp)
    icarl = compose_config(tmp_path, "strategy=icarl")
    assert icarl.buffer.groupby == "class"
    assert icarl.selection._target_.endswith("ICaRLHerdingSelectionStrategy")
    validate(compose_config(tmp_path, "strategy=icarl", "buffer=class_balanced",
                            "selection=random"))


# -- in-process runs: crash, resume, same matrix --------------------------------------------
class CrashingERACE(CrashMidExperience, ER_ACE):
    pass


class CrashingDERpp(CrashMidExperience, DERpp):
    pass


class CrashingGDumb(CrashMidExperience, GDumb):
    pass


class CrashingICaRL(CrashMidExperience, ICaRL):
    pass


class CrashingAGEM(CrashMidExperience, AGEM):
    pass


class CrashingBiC(CrashMidExperience, BiC):
    pass


JOBS = itertools.count()
TINY = ("tracking=none", "strategy.train_epochs=1", "model.hidden_size=16",
        "buffer.max_size=60")
RUNS = {
    "er_ace": ("CrashingERACE", (), {"memory_ce", "incoming_ace"}),
    "derpp": ("CrashingDERpp", (), {"incoming_ce", "logit_replay", "memory_ce"}),
    "gdumb": ("CrashingGDumb", ("strategy.train_epochs=10",), set()),  # 60 samples to fit
    "icarl": ("CrashingICaRL", (), {"classification", "distillation"}),
    "agem": ("CrashingAGEM", (), {"reference"}),
    "bic": ("CrashingBiC", ("strategy.stage_2_epochs=20",), {"classification", "distillation"}),
}


def run_composed(cfg, root: Path, **updates):
    """One job of the composed ``cfg`` with ``updates`` (dotted keys), outputs under ``root``
    (composing once per test keeps these runs quick)."""
    cfg = copy.deepcopy(cfg)
    for key, value in {"paths.output_root": str(root), **updates}.items():
        OmegaConf.update(cfg, key, value)
    folder = root / "runs" / "in-process" / f"job{next(JOBS)}"
    return run_job(cfg, folder, overrides=tuple(f"{k}={v}" for k, v in updates.items()),
                   writer="thread")


@pytest.mark.parametrize("method", list(RUNS))
def test_crash_and_resume_give_the_uninterrupted_matrix(tmp_path: Path, method: str):
    """Crash mid-way through experience 2 (a strategy subclass raising in its loss), resume:
    the accuracy matrix equals an uninterrupted run's, in the same run folder. The methods'
    own state (memories with payload, old models, bias layer, holdout, initial weights) went
    through a checkpoint the runner loads with ``weights_only=True``."""
    crashing, extra, terms = RUNS[method]
    cfg = compose_config(tmp_path, f"strategy={method}", *TINY, *extra)
    reference = run_composed(cfg, tmp_path / "reference")
    lines = read_metrics(reference.output_dir)
    assert {f"train/loss_{t}" for t in terms} <= set(lines[-1])
    assert lines[-1]["buffer/size"] > 0 and reference.final_average_accuracy > 0.2
    root = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="boom"):
        run_composed(cfg, root, **{"strategy._target_": f"tests.test_methods.{crashing}"})
    resumed = run_composed(cfg, root, resume=True,
                           resume_allow_changes=["strategy._target_"])
    assert resumed.output_dir.parent == root / "runs" / "in-process"
    assert resumed.matrix.rows == reference.matrix.rows
    assert [line["step"] for line in read_metrics(resumed.output_dir)] == [0, 1, 2, 3, 4]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("method", list(RUNS))
def test_every_method_runs_on_the_gpu(tmp_path: Path, method: str):
    result = run_here(tmp_path, f"strategy={method}", *TINY, *RUNS[method][1], "device=cuda")
    assert len(result.matrix.rows) == 5
