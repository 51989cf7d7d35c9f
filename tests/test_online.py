"""The online protocol, anytime evaluation, periodic evaluation and the online methods (MIR,
GSS-greedy, SCR): Avalanche's observed values and hand-computed ones on tiny models, and the
runner in-process (MLflow steps, crash and resume, Ctrl-C)."""

from __future__ import annotations

import math
import os
import random
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from cl_runner.benchmarks import Experience, Stream
from cl_runner.benchmarks.online import OnlineCLExperience, split_online_stream
from cl_runner.data import ClassificationDataset
from cl_runner.evaluation.anytime import AnytimeAccuracy, current_samples, subsample_stream
from cl_runner.recording import read_metrics
from cl_runner.signals import RunInterrupted
from cl_runner.training import Naive, ReplayPlugin, SupervisedPlugin
from cl_runner.training.gss import GSS_greedyPlugin, max_cosine
from cl_runner.training.mir import MIRPlugin
from cl_runner.training.online import OnlineNaive
from cl_runner.training.scr import SCR, CropFlip, supcon_loss
from tests.helpers import history, local_store, run_here, runs_of


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one torch thread (two fight each other on a busy machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def toy_stream(sizes: tuple[int, ...] = (10, 10)) -> Stream:
    """Origin experiences whose x is the sample's index (Avalanche's live check, m8)."""
    n = sum(sizes)
    data = ClassificationDataset(torch.arange(n, dtype=torch.float32).unsqueeze(1),
                                 torch.arange(n) % 3, name="toy_online/train")
    exps, start = [], 0
    for i, size in enumerate(sizes):
        exps.append(Experience(data.subset(torch.arange(start, start + size)), i, [0, 1, 2], 0))
        start += size
    return Stream("train", exps)


def xs(chunk: OnlineCLExperience) -> list[int]:
    return chunk.dataset.tensors()[0].flatten().long().tolist()


# -- split_online_stream: Avalanche 0.6's observed chunks ----------------------------------------
def test_split_online_stream_matches_avalanche_chunks_and_fields():
    origin = toy_stream()
    online = split_online_stream(origin, experience_size=4, seed=0)
    assert online.name == "train_online" and len(online) == 6
    assert [xs(c) for c in online] == [[4, 1, 7, 5], [3, 9, 0, 8], [6, 2],
                                       [14, 11, 17, 15], [13, 19, 10, 18], [16, 12]]
    chunks = list(online)
    assert [c.current_experience for c in chunks] == list(range(6))
    assert [c.origin_experience.current_experience for c in chunks] == [0, 0, 0, 1, 1, 1]
    assert [c.is_first_subexp for c in chunks] == [True, False, False, True, False, False]
    assert [c.is_last_subexp for c in chunks] == [False, False, True, False, False, True]
    assert [c.subexp_size for c in chunks] == [4, 4, 2, 4, 4, 2]
    assert {c.sub_stream_length for c in chunks} == {3}
    assert all(c.origin_stream == "train_online" and not c.access_task_boundaries
               for c in chunks)
    assert chunks[0].dataset.shares_storage(origin[0].dataset)  # a view, no copy
    assert [xs(c) for c in online[4:]] == [[13, 19, 10, 18], [16, 12]]  # re-iterable, sliced
    dropped = split_online_stream(toy_stream(), 4, drop_last=True, seed=0)
    assert [xs(c) for c in dropped] == [[4, 1, 7, 5], [3, 9, 0, 8], [14, 11, 17, 15],
                                        [13, 19, 10, 18]]
    assert [c.is_last_subexp for c in dropped] == [False, True, False, True]
    ordered = split_online_stream(toy_stream(), 4, shuffle=False)
    assert [xs(c) for c in ordered][:3] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    # divisible sizes: the last chunk is flagged (Avalanche flags none: a documented fix)
    assert [c.is_last_subexp for c in split_online_stream(toy_stream(), 5, seed=0)] == [
        False, True, False, True]
    random.seed(42)  # seed=None draws the permutation seed from Python's random
    assert xs(split_online_stream(toy_stream(), 4)[0]) == [6, 9, 1, 2]
    custom = split_online_stream(toy_stream(), 4, experience_split_strategy=lambda exp, size: [
        OnlineCLExperience(dataset=exp.dataset, origin_experience=exp)])
    assert len(custom) == 2 and custom[1].current_experience == 1


def test_online_naive_trains_passes_per_chunk_and_counts_iterations():
    online = split_online_stream(toy_stream((10, 7)), 4, seed=0)
    model = nn.Linear(1, 3)
    strategy = OnlineNaive(model, torch.optim.SGD(model.parameters(), lr=0.1), train_passes=2,
                           train_mb_size=3, evaluator=None)
    assert strategy.train_epochs == 2
    strategy.train(online)
    # chunks of 4,4,2 | 4,3 samples; ceil(size / 3) steps, twice each
    assert strategy.clock.train_iterations == 2 * (2 + 2 + 1 + 2 + 1)
    assert strategy.clock.train_exp_counter == len(online) == 5


# -- periodic evaluation: Avalanche's live counts (notes b) --------------------------------------
class EvalCounter(SupervisedPlugin):
    def __init__(self) -> None:
        self.evals: list[list[int]] = []

    def before_eval(self, strategy, **kwargs) -> None:
        self.evals.append([e.current_experience for e in strategy.current_eval_stream])


def periodic_evals(eval_every: int, mode: str = "epoch", epochs: int = 3,
                   eval_streams=None, whole_stream: bool = False) -> list[list[int]]:
    data = ClassificationDataset(torch.randn(40, 2), torch.arange(40) % 4)
    train = Stream("train", [Experience(data.subset(torch.arange(20 * i, 20 * i + 20)), i,
                                        [0, 1, 2, 3], 0) for i in range(2)])
    model = nn.Linear(2, 4)
    counter = EvalCounter()
    strategy = Naive(model, torch.optim.SGD(model.parameters(), lr=0.01), train_mb_size=10,
                     train_epochs=epochs, plugins=[counter], evaluator=None,
                     eval_every=eval_every, peval_mode=mode)
    if whole_stream:
        strategy.train(train, eval_streams=eval_streams)
    else:
        for exp in train:
            strategy.train(exp, eval_streams=eval_streams)
    return counter.evals


@pytest.mark.parametrize(("eval_every", "mode", "epochs", "per_train"), [
    (-1, "epoch", 3, 0), (0, "epoch", 3, 2), (0, "iteration", 3, 2), (1, "epoch", 3, 4),
    (1, "iteration", 3, 8), (1, "experience", 3, 2), (2, "epoch", 3, 3), (2, "epoch", 4, 4),
    (2, "iteration", 3, 5), (3, "iteration", 3, 4),
])
def test_periodic_eval_counts_match_avalanche(eval_every, mode, epochs, per_train):
    evals = periodic_evals(eval_every, mode, epochs)
    assert len(evals) == 2 * per_train
    assert all(e in ([0], [1]) for e in evals)  # the experience being trained


def test_periodic_eval_streams():
    test = Stream("test", [Experience(ClassificationDataset(torch.randn(5, 2), [0] * 5), j,
                                      [0], 0, "test") for j in range(2)])
    assert periodic_evals(0, eval_streams=[test]) == [[0, 1]] * 4
    assert periodic_evals(0, eval_streams=[]) == []
    assert periodic_evals(0, eval_streams=[test[0]]) == [[0]] * 4
    assert periodic_evals(0, whole_stream=True) == [[0, 1]] * 3  # future experience included


# -- anytime metrics by hand ---------------------------------------------------------------------
def test_anytime_accuracy_aaa_min_and_wc_acc_by_hand():
    tracker = AnytimeAccuracy(3)
    line = tracker.add_point(0, {0: 0.8, 1: 0.0, 2: 0.0}, 0.3)
    assert line["anytime_eval/accuracy_seen"] == pytest.approx(0.8) and list(line)[0] == (
        "anytime_eval/accuracy_seen")
    assert line["anytime_eval/exp_001"] == 0.0 and line["anytime_eval/aaa"] == pytest.approx(0.8)
    assert tracker.summary(0, 0.9) == {
        "anytime/aaa": pytest.approx(0.8), "anytime/wc_acc": 0.9,
        "anytime/min_acc": pytest.approx(math.nan, nan_ok=True)}
    tracker.add_point(1, {0: 0.2, 1: 0.6, 2: 0.0}, 0.3)   # exp 0 dips while training exp 1
    tracker.add_point(1, {0: 0.5, 1: 0.9, 2: 0.0}, 0.5)
    summary = tracker.summary(1, 0.9)
    assert summary["anytime/aaa"] == pytest.approx((0.8 + 0.4 + 0.7) / 3)
    assert summary["min_accuracy/exp_000"] == pytest.approx(0.2)
    assert summary["anytime/wc_acc"] == pytest.approx(0.9 / 2 + 0.5 * 0.2)
    tracker.add_point(2, {0: 0.6, 1: 0.3, 2: 0.7}, 0.5)
    summary = tracker.summary(2, 0.7)
    assert summary["min_accuracy/exp_001"] == pytest.approx(0.3)
    assert summary["anytime/min_acc"] == pytest.approx(0.25)
    assert summary["anytime/wc_acc"] == pytest.approx(0.7 / 3 + 2 / 3 * 0.25)
    restored = AnytimeAccuracy(3)
    restored.load_state_dict(tracker.state_dict())
    assert restored.summary(2, 0.7) == summary


def test_subsample_stream_is_fixed_proportional_and_leaves_the_global_rng():
    test = Stream("test", [Experience(ClassificationDataset(torch.randn(n, 2), [j] * n), j,
                                      [j], 0, "test") for j, n in enumerate((30, 10))])
    state = torch.get_rng_state()
    part = subsample_stream(test, 8, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    assert [len(e.dataset) for e in part] == [6, 2]
    again = subsample_stream(test, 8, seed=3)
    assert all(torch.equal(a.dataset.storage_indices, b.dataset.storage_indices)
               for a, b in zip(part, again, strict=True))
    assert subsample_stream(test, None, 0) == list(test)


def test_current_samples_counts_the_current_part_of_replay_batches():
    from cl_runner.data.loaders import ReplayDataLoader

    current = ClassificationDataset(torch.randn(25, 2), [0] * 25)
    memory = ClassificationDataset(torch.randn(7, 2), [1] * 7)
    loader = ReplayDataLoader(current, memory, oversample_small_tasks=True, batch_size=10,
                              batch_size_mem=4)
    left, counts = 25, []
    for batch in loader:
        strategy = SimpleNamespace(dataloader=loader, adapted_dataset=current, mbatch=batch)
        counts.append(current_samples(strategy, left))
        left -= counts[-1]
    assert counts == [10, 10, 5]


# -- MIR by hand ---------------------------------------------------------------------------------
def test_mir_replays_the_most_interfered_candidates_by_hand():
    torch.manual_seed(0)
    model = nn.Linear(2, 3, bias=False)
    criterion = nn.CrossEntropyLoss()
    lr = 0.5
    x_c, y_c = torch.tensor([[1.0, 2.0]]), torch.tensor([0])
    x_m = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 2.0]])
    y_m = torch.tensor([1, 2, 1, 2])
    plugin = MIRPlugin(batch_size_mem=2, mem_size=10, subsample=4)
    plugin.pool = ClassificationDataset(x_m, y_m)
    loss = criterion(model(x_c), y_c)
    strategy = SimpleNamespace(model=model, _criterion=criterion, device=torch.device("cpu"),
                               optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                               loss=loss, loss_terms={})
    # by hand: a virtual SGD step on the incoming sample, then each candidate's loss change
    g = torch.autograd.grad(criterion(model(x_c), y_c), model.weight)[0]
    w_new = model.weight.detach() - lr * g
    before = nn.functional.cross_entropy(x_m @ model.weight.detach().T, y_m, reduction="none")
    after = nn.functional.cross_entropy(x_m @ w_new.T, y_m, reduction="none")
    chosen = torch.topk(after - before, 2).indices
    expected = criterion(model(x_m[chosen]), y_m[chosen])
    plugin.before_backward(strategy)
    assert float(strategy.loss_terms["mir_replay"]) == pytest.approx(float(expected.detach()),
                                                                     rel=1e-6)
    assert float(strategy.loss.detach()) == pytest.approx(float((loss + expected).detach()),
                                                          rel=1e-6)
    strategy.loss.backward()  # the graph is intact
    assert model.weight.grad is not None


def test_mir_candidates_exclude_the_classes_of_the_last_batch():
    from cl_runner.buffers import ClassBalancedBuffer

    data = ClassificationDataset(torch.randn(12, 2), torch.arange(12) % 3)
    plugin = MIRPlugin(batch_size_mem=2, mem_size=12, subsample=5,
                       storage_policy=ClassBalancedBuffer(12))
    strategy = SimpleNamespace(experience=SimpleNamespace(dataset=data),
                               mbatch=[None, torch.tensor([1, 1, 2])])
    strategy.mb_y = strategy.mbatch[1]
    plugin.after_training_exp(strategy)
    assert set(plugin.pool.targets.tolist()) == {0} and len(plugin.pool) == 4
    x, y, _ = plugin._candidates(torch.device("cpu"))
    assert len(y) == 4 and set(y.tolist()) == {0}  # a pass of 4 < subsample=5
    strategy.mb_y = strategy.mbatch[1] = torch.tensor([0, 1, 2])
    plugin.after_training_exp(strategy)
    assert plugin.pool is None  # nothing left to replay


# -- GSS-greedy by hand --------------------------------------------------------------------------
class FakeStrategy(SimpleNamespace):
    mb_x = property(lambda self: self.mbatch[0])
    mb_y = property(lambda self: self.mbatch[1])
    mb_task_id = property(lambda self: self.mbatch[2])


def gss_setup(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor):
    data = ClassificationDataset(x, y, name="gss_by_hand")
    model = nn.Linear(x.shape[1], 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(weight)
    strategy = FakeStrategy(model=model, _criterion=nn.CrossEntropyLoss(), is_training=True,
                            device=torch.device("cpu"), adapted_dataset=data.subset(
                                torch.arange(len(y))))
    return data, strategy


def batch_of(strategy: FakeStrategy, data: ClassificationDataset, rows: list[int]) -> None:
    idx = torch.tensor(rows)
    x, y, t = data.gather(idx)
    strategy.mbatch = [x, y, t, idx, torch.ones(len(idx), dtype=torch.bool)]


def test_gss_scores_are_max_cosines_to_memory_subset_gradients_by_hand():
    torch.manual_seed(0)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])
    y = torch.tensor([0, 1, 0, 1])
    data, strategy = gss_setup(x, y, torch.tensor([[0.3, -0.2], [0.1, 0.4]]))
    plugin = GSS_greedyPlugin(mem_size=10, mem_strength=3)
    batch_of(strategy, data, [0, 1])
    plugin.after_forward(strategy)
    assert plugin.n == 2 and plugin.rows[:2].tolist() == [0, 1]
    assert plugin.score[:2].tolist() == pytest.approx([0.1, 0.1])  # first insertion

    def grad_of(rows: list[int]) -> torch.Tensor:
        loss = nn.functional.cross_entropy(strategy.model(x[rows]), y[rows])
        return torch.autograd.grad(loss, strategy.model.weight)[0].flatten()

    # 2 memory samples, batch of 2: one subset holding the whole memory (Avalanche: none, and
    # it fails); each incoming sample's score is its gradient's cosine to the subset's
    batch_of(strategy, data, [2, 3])
    plugin.after_forward(strategy)
    memory = grad_of([0, 1])
    expected = [float(nn.functional.cosine_similarity(grad_of([r]), memory, dim=0))
                for r in (2, 3)]
    assert plugin.n == 4 and plugin.rows[2:4].tolist() == [2, 3]
    assert plugin.score[2:4].tolist() == pytest.approx(expected, abs=1e-6)
    assert strategy.model.weight.grad is None  # scoring leaves no gradient behind


def test_gss_avalanche_bugs_mode_leaks_the_last_scoring_gradient_and_offers_replayed_samples():
    torch.manual_seed(0)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])
    y = torch.tensor([0, 1, 0, 1])
    data, strategy = gss_setup(x, y, torch.tensor([[0.3, -0.2], [0.1, 0.4]]))
    plugin = GSS_greedyPlugin(mem_size=10, mem_strength=3, avalanche_bugs=True)
    batch_of(strategy, data, [0, 1])
    plugin.after_forward(strategy)
    assert strategy.model.weight.grad is None  # first insertion: no scoring, nothing leaks
    batch_of(strategy, data, [2, 3])
    strategy.mbatch[4] = torch.tensor([True, False])  # row 3 is a replayed sample: offered too
    plugin.after_forward(strategy)
    assert plugin.rows[:4].tolist() == [0, 1, 2, 3]
    last = nn.functional.cross_entropy(strategy.model(x[[3]]), y[[3]])
    expected = torch.autograd.grad(last, strategy.model.weight)[0]
    assert torch.allclose(strategy.model.weight.grad, expected, atol=1e-6)


def test_gss_replaces_high_score_slots_when_the_batch_gradient_opposes_memory():
    torch.manual_seed(0)
    x = torch.tensor([[1.0, 0.0]] * 5)
    y = torch.tensor([0, 0, 0, 1, 1])
    data, strategy = gss_setup(x, y, torch.zeros(2, 2))
    plugin = GSS_greedyPlugin(mem_size=3, mem_strength=1)
    plugin.rows[:3] = torch.tensor([0, 1, 2])
    plugin.score[:3] = torch.tensor([0.1, 0.5, 0.9])
    plugin.n = 3
    batch_of(strategy, data, [0, 1])  # same class as memory: gradient agrees, nothing changes
    plugin.after_forward(strategy)
    assert plugin.rows.tolist() == [0, 1, 2]
    # class 1 at the same input: cosine -1 to memory; slot 0 has the lowest score (weight 0),
    # slots 1 and 2 are drawn and replaced with probability (s+1)/2 / (0 + (s+1)/2) = 1
    batch_of(strategy, data, [3, 4])
    plugin.after_forward(strategy)
    assert plugin.rows[0] == 0 and set(plugin.rows[1:].tolist()) == {3, 4}
    assert plugin.score.tolist() == pytest.approx([0.1, -1.0, -1.0], abs=1e-6)
    assert max_cosine(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0], [2.0, 0.0]])
                      ).tolist() == pytest.approx([1.0])


# -- SCR ---------------------------------------------------------------------------------------
def supcon_by_loops(features: torch.Tensor, labels: torch.Tensor, tau: float) -> float:
    views = [features[:, v] for v in range(features.shape[1])]
    z = torch.cat(views)
    lab = labels.repeat(features.shape[1])
    total = 0.0
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        denom = sum(math.exp(float(z[i] @ z[a]) / tau) for a in others)
        pos = [p for p in others if lab[p] == lab[i]]
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / tau) / denom) for p in pos) / len(
            pos)
    return (tau / 0.07) * total / len(z)


def test_supcon_loss_by_loops_and_crop_flip_with_full_crops():
    torch.manual_seed(0)
    features = nn.functional.normalize(torch.randn(5, 2, 4), dim=2)
    labels = torch.tensor([0, 1, 0, 2, 1])
    assert float(supcon_loss(features, labels, 0.1)) == pytest.approx(
        supcon_by_loops(features, labels, 0.1), rel=1e-5)
    images = torch.randn(6, 1, 8, 8)
    out = CropFlip(scale=(1.0, 1.0), ratio=(1.0, 1.0))(images)  # whole image, maybe flipped
    for a, b in zip(out, images, strict=True):
        assert torch.allclose(a, b, atol=1e-5) or torch.allclose(a, b.flip(-1), atol=1e-5)
    assert CropFlip()(torch.randn(3, 64)).shape == (3, 64)  # flat 8x8 inputs


def test_scr_class_means_by_hand_and_nearest_mean_prediction():
    from cl_runner.buffers import ReservoirSamplingBuffer

    torch.manual_seed(0)
    model = nn.Sequential()
    model.features = nn.Identity()
    model.dummy = nn.Linear(2, 2)  # parameters for the optimizer
    x = torch.tensor([[2.0, 0.0], [1.0, 0.1], [0.0, 3.0], [0.1, 1.0]])
    y = torch.tensor([0, 0, 2, 2])
    optimizer = torch.optim.SGD(model.dummy.parameters(), lr=0.1)
    strategy = SCR(model, optimizer, mem_size=4, train_mb_size=2, batch_size_mem=2,
                   input_shape=(2,), num_classes=3, evaluator=None,
                   storage_policy=ReservoirSamplingBuffer(4))
    assert len(optimizer.param_groups) == 2  # the projection head joined the optimizer
    strategy.storage_policy.update_from_dataset(ClassificationDataset(x, y))
    strategy.update_class_means()
    f = nn.functional.normalize(x, dim=1)
    means = strategy.model.ncm.class_means
    assert torch.allclose(means[0], nn.functional.normalize(f[:2].mean(0), dim=0))
    assert torch.allclose(means[2], nn.functional.normalize(f[2:].mean(0), dim=0))
    assert torch.equal(means[1], torch.zeros(2))  # no memory sample: a zero mean
    strategy.model.eval()
    scores = strategy.model(torch.tensor([[1.0, 0.2], [0.2, 1.0]]))
    assert scores.argmax(1).tolist() == [0, 2]


# -- the protocol group ----------------------------------------------------------------------------
def test_protocol_options_compose_validate_and_refuse_what_cannot_work(tmp_path: Path):
    from cl_runner.checks import SettingError
    from cl_runner.config import validate
    from tests.helpers import compose_config

    batch = compose_config(tmp_path, "benchmark=split_fmnist")
    validate(batch)
    assert batch.protocol._target_.endswith("BatchProtocol")
    assert batch.strategy.train_mb_size == 100 and batch.buffer._target_.endswith("Balanced"
                                                                                     "Buffer")
    online = compose_config(tmp_path, "benchmark=split_fmnist", "protocol=online",
                            "protocol.experience_size=20", "protocol.train_passes=3")
    validate(online)
    assert online.strategy.train_mb_size == 20 and online.strategy.train_epochs == 3
    assert online.buffer._target_.endswith("ReservoirSamplingBuffer")  # online's default
    assert compose_config(tmp_path, "protocol=online", "strategy=naive").buffer._target_ is None
    assert compose_config(tmp_path, "protocol=online", "strategy=mir").buffer._target_.endswith(
        "ClassBalancedBuffer")  # the method's memory wins over the protocol's
    for overrides, setting in [
        (("buffer=experience_balanced",), "buffer='experience_balanced'"),
        (("strategy.train_epochs=2",), "strategy.train_epochs=2"),
        (("protocol.eval_every=0",), "protocol.eval_every=0"),
        (("protocol.experience_size=0",), "protocol.experience_size=0"),
    ]:
        with pytest.raises(SettingError, match=f"^{setting} is not allowed"):
            validate(compose_config(tmp_path, "protocol=online", *overrides))
    for option in ("mir", "gss_greedy", "scr"):
        validate(compose_config(tmp_path, "protocol=online", f"strategy={option}"))


@pytest.mark.parametrize("strategy", ["er_ace", "der", "derpp"])
def test_online_er_ace_and_der_replay_from_a_reservoir_unless_told_otherwise(tmp_path, strategy):
    from tests.helpers import compose_config

    def memory(*overrides):
        return compose_config(tmp_path, f"strategy={strategy}", *overrides).buffer._target_

    assert memory().endswith(".ClassBalancedBuffer")  # offline: Avalanche's memory
    assert memory("protocol=online").endswith(".ReservoirSamplingBuffer")
    assert memory("protocol=online", "buffer=class_balanced").endswith(".ClassBalancedBuffer")
    assert memory("benchmark=split_fmnist", "protocol=online").endswith(".ReservoirSampling"
                                                                       "Buffer")


# -- the runner, in-process -----------------------------------------------------------------------
ONLINE = ("protocol=online", "benchmark.n_experiences=5", "protocol.experience_size=20")
TIMES = ("time/", "train/samples_per_s", "train/steps_per_s")


def comparable(folder: Path) -> list[dict]:
    return [{k: v for k, v in line.items() if not k.startswith(TIMES)}
            for line in read_metrics(folder)]


class InterruptingReplay(ReplayPlugin):
    """Sends this process SIGINT when chunk ``at`` starts (Ctrl-C mid-stream)."""

    def __init__(self, at: int = 30, **kwargs) -> None:
        super().__init__(**kwargs)
        self.at = at

    def before_training_exp(self, strategy, **kwargs) -> None:
        if strategy.experience.current_experience == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        super().before_training_exp(strategy, **kwargs)


def test_online_run_logs_anytime_points_by_samples_and_ctrl_c_keeps_them(tmp_path: Path):
    """Anytime lines (step = samples seen) and experience lines (step = experience) reach
    MLflow; Ctrl-C mid-stream ends the run KILLED with every point taken so far."""
    with pytest.raises(RunInterrupted):
        run_here(tmp_path, *ONLINE, "protocol.eval_every=100",
                 "dataloader._target_=tests.test_online.InterruptingReplay", "+dataloader.at=40")
    uri = local_store(tmp_path)
    (run,) = runs_of(uri)
    assert run.info.status == "KILLED" and run.info.run_name.startswith("online-reservoir-")
    (folder,) = (tmp_path / "runs" / "in-process").iterdir()
    lines = read_metrics(folder)
    anytime = [line["step"] for line in lines if "anytime_eval/accuracy_seen" in line]
    assert anytime and all(s % 100 < 20 for s in anytime)  # chunks of 20 cross each 100
    assert [s for s, _ in history(uri, run.info.run_id, "anytime_eval/accuracy_seen")] == anytime
    experiences = [line["step"] for line in lines if "accuracy/stream" in line]
    assert [s for s, _ in history(uri, run.info.run_id, "accuracy/stream")] == experiences
    assert experiences == list(range(len(experiences))) and len(experiences) >= 2
    last = [line for line in lines if "accuracy/stream" in line][-1]
    assert {"anytime/aaa", "anytime/wc_acc", "train/steps_per_s",
            "time/anytime_eval_s"} <= set(last)
    assert last["train/iterations"] > 0


def test_online_resume_after_a_crash_mid_stream_reproduces_the_run(tmp_path: Path):
    """Checkpoints every 100 samples; a crash at chunk 37 resumes from the last checkpoint
    inside the experience and gives the uninterrupted run's every metric line."""
    settings = (*ONLINE, "tracking=none", "protocol.eval_every=60",
                "protocol.checkpoint_every=100", "strategy=mir")
    reference = run_here(tmp_path / "reference", *settings)
    root = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="boom"):
        _crash(root, settings, at=37)
    state = torch.load(next(root.glob("runs/*/*/checkpoint.pt")), weights_only=True)
    assert 0 < state["online"]["next_chunk"] <= 37
    assert state["online"]["period"]["iterations"] > 0  # inside an original experience
    resumed = run_here(root, *settings, "resume=true")
    assert resumed.matrix.rows == reference.matrix.rows
    assert comparable(resumed.output_dir) == comparable(reference.output_dir)


def _crash(root: Path, settings: tuple[str, ...], at: int) -> None:
    import cl_runner.training.mir as mir

    original = mir.MIRPlugin.after_training_exp

    def crashing(self, strategy, **kwargs):
        if strategy.experience.current_experience == at:
            raise RuntimeError("boom: injected failure")
        return original(self, strategy, **kwargs)

    mir.MIRPlugin.after_training_exp = crashing
    try:
        run_here(root, *settings)
    finally:
        mir.MIRPlugin.after_training_exp = original
