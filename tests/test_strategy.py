"""Strategy template: callback order, training effect, Avalanche-named metrics by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cl_runner.allocator import keep_freed_memory
from cl_runner.benchmarks import Experience, SplitDigits
from cl_runner.data import ClassificationDataset
from cl_runner.evaluation import (
    EvaluationPlugin,
    accuracy_metrics,
    bwt_metrics,
    forgetting_metrics,
    loss_metrics,
)
from cl_runner.models import SimpleMLP
from cl_runner.training import CALLBACKS, Naive, SupervisedPlugin


class Recorder(SupervisedPlugin):
    def __init__(self) -> None:
        self.events: list[str] = []


for _name in CALLBACKS:
    setattr(Recorder, _name, (lambda n: lambda self, strategy, **kw: self.events.append(n))(_name))


class TableModel(nn.Module):
    """Predicts ``answers[x]`` for integer inputs x: accuracy is set by hand."""

    def __init__(self, n_classes: int = 2) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.answers: dict[int, int] = {}
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pred = torch.tensor([self.answers.get(int(v), 0) for v in x.flatten()])
        return nn.functional.one_hot(pred, self.n_classes).float() + 0 * self.dummy


def exp_of(x: list[int], y: list[int], i: int, stream: str = "test") -> Experience:
    data = ClassificationDataset(torch.tensor(x, dtype=torch.float32).unsqueeze(1),
                                 torch.tensor(y))
    return Experience(data, i, sorted(set(y)), 0, stream)


def test_callbacks_fire_in_avalanche_order():
    bench = SplitDigits(n_experiences=5, seed=0)
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=16)
    rec = Recorder()
    strategy = Naive(model, torch.optim.SGD(model.parameters(), lr=0.01), train_mb_size=200,
                     train_epochs=2, plugins=[rec], evaluator=None)
    strategy.train(bench.train_stream[0])
    n_iters = 2 * -(-len(bench.train_stream[0].dataset) // 200)
    iteration = ["before_training_iteration", "before_forward", "after_forward",
                 "before_backward", "after_backward", "before_update", "after_update",
                 "after_training_iteration"]
    epoch = ["before_training_epoch", *iteration * (n_iters // 2), "after_training_epoch"]
    assert rec.events == [
        "before_training", "before_train_dataset_adaptation", "after_train_dataset_adaptation",
        "before_training_exp", *epoch, *epoch, "after_training_exp", "after_training",
    ]
    rec.events.clear()
    strategy.eval(bench.test_stream[:2])
    per_exp = lambda n: ["before_eval_dataset_adaptation", "after_eval_dataset_adaptation",  # noqa: E731
                         "before_eval_exp",
                         *["before_eval_iteration", "before_eval_forward", "after_eval_forward",
                           "after_eval_iteration"] * n, "after_eval_exp"]
    assert rec.events == ["before_eval", *per_exp(1), *per_exp(1), "after_eval"]
    assert set(CALLBACKS) <= set(rec.events) | set(
        ["before_training", "before_train_dataset_adaptation", "after_train_dataset_adaptation",
         "before_training_exp", "before_training_epoch", "after_training_epoch",
         "after_training_exp", "after_training"] + iteration)
    assert strategy.clock.train_iterations == n_iters and strategy.clock.train_exp_counter == 1


def test_evaluator_is_dispatched_only_the_events_its_metrics_and_loggers_use():
    class IterationLogger:
        def __init__(self) -> None:
            self.calls = 0

        def log_metrics(self, values) -> None:
            pass

        def after_training_iteration(self, strategy, emitted, **kwargs) -> None:
            self.calls += 1

    class CountingEvaluator(EvaluationPlugin):
        def __init__(self) -> None:
            super().__init__(accuracy_metrics(experience=True))
            self.epochs = 0

        def after_training_epoch(self, strategy, **kwargs) -> None:
            self.epochs += 1

    assert EvaluationPlugin().handled_events() == set()
    experience_only = EvaluationPlugin(accuracy_metrics(experience=True)).handled_events()
    assert experience_only and experience_only < set(CALLBACKS)
    assert "after_training_iteration" not in experience_only

    bench = SplitDigits(n_experiences=5, seed=0)
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=16)
    logger, evaluator = IterationLogger(), CountingEvaluator()
    with_logger = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[logger])
    for plugin in (evaluator, with_logger):
        strategy = Naive(model, torch.optim.SGD(model.parameters(), lr=0.01), train_mb_size=200,
                         train_epochs=2, evaluator=plugin)
        strategy.train(bench.train_stream[0])
    assert evaluator.epochs == 2  # an overriding subclass still gets its callback
    assert logger.calls == strategy.clock.train_iterations
    metrics = strategy.eval(bench.test_stream[0])
    assert "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000" in metrics


def test_allocator_keeps_freed_memory_unless_the_user_set_glibc_thresholds(monkeypatch):
    assert keep_freed_memory() is True  # glibc on Linux, the only platform CI runs on
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert keep_freed_memory.__wrapped__() is False


def test_eval_restores_training_state_and_train_epochs_zero_still_fires_exp_callbacks():
    bench = SplitDigits(n_experiences=5, seed=0)
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=16)
    rec = Recorder()
    strategy = Naive(model, torch.optim.SGD(model.parameters(), lr=0.01), train_mb_size=32,
                     train_epochs=0, plugins=[rec], evaluator=None)
    strategy.train(bench.train_stream[0])
    assert "after_training_exp" in rec.events and "before_training_iteration" not in rec.events
    model.train()
    strategy.eval(bench.test_stream[0])
    assert model.training


def test_training_learns_the_first_experience():
    torch.manual_seed(0)
    bench = SplitDigits(n_experiences=5, seed=0)
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=64, drop_rate=0.0)
    strategy = Naive(model, torch.optim.Adam(model.parameters(), lr=1e-2), train_mb_size=32,
                     train_epochs=3, evaluator=EvaluationPlugin(accuracy_metrics(experience=True)))
    strategy.train(bench.train_stream[0])
    metrics = strategy.eval(bench.test_stream[0])
    assert metrics["Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000"] > 0.9


def test_accuracy_loss_forgetting_names_and_values_by_hand():
    model = TableModel()
    model.answers = {0: 0, 1: 1, 2: 0, 3: 0}
    test = [exp_of([0, 1, 2, 3], [0, 1, 1, 1], 0), exp_of([4, 5], [1, 1], 1)]
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True), loss_metrics(stream=True),
        forgetting_metrics(experience=True, stream=True), bwt_metrics(stream=True),
    )
    strategy = Naive(model, torch.optim.SGD(model.parameters(), lr=0.0), train_mb_size=4,
                     train_epochs=0, eval_mb_size=3, evaluator=evaluator)
    strategy.train(exp_of([0], [0], 0, "train"))
    m = strategy.eval(test)
    assert m["Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000"] == pytest.approx(2 / 4)
    assert m["Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001"] == pytest.approx(0 / 2)
    assert m["Top1_Acc_Stream/eval_phase/test_stream/Task000"] == pytest.approx(2 / 6)
    assert "Loss_Stream/eval_phase/test_stream/Task000" in m
    assert not any(k.startswith("ExperienceForgetting") for k in m)  # just-trained exp: none
    # "train" experience 1, then the model forgets exp 0: accuracy 2/4 -> 1/4
    strategy.train(exp_of([4], [1], 1, "train"))
    model.answers = {0: 0, 1: 0, 2: 0, 3: 0, 4: 1, 5: 1}
    m = strategy.eval(test)
    assert m["ExperienceForgetting/eval_phase/test_stream/Task000/Exp000"] == pytest.approx(0.25)
    assert m["StreamForgetting/eval_phase/test_stream"] == pytest.approx(0.25)
    assert m["StreamBWT/eval_phase/test_stream"] == pytest.approx(-0.25)
    assert m["Top1_Acc_Stream/eval_phase/test_stream/Task000"] == pytest.approx(3 / 6)
