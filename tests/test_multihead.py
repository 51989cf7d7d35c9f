"""Task-incremental training: heads are adapted (masked) per experience, as in Avalanche, and
the optimizer follows heads that adaptation adds."""

from __future__ import annotations

import torch
from torch import nn

from cl_runner.benchmarks import SplitDigits
from cl_runner.evaluation import EvaluationPlugin, accuracy_metrics
from cl_runner.models import MultiHeadClassifier, MultiHeadMLP
from cl_runner.training import GDumb, Naive

MASK = -1000


def quiet():
    return EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])


def test_a_trained_head_outputs_only_its_experiences_classes():
    torch.manual_seed(0)
    bench = SplitDigits(5, return_task_id=True, seed=1)
    model = MultiHeadMLP(num_classes=10, input_size=64, n_tasks=5, hidden_size=32)
    strategy = Naive(model, torch.optim.SGD(model.parameters(), lr=0.1), train_mb_size=32,
                     evaluator=quiet())
    for exp in bench.train_stream[:2]:
        strategy.train(exp)
    model.eval()
    for exp in bench.test_stream:
        x, _, t = exp.dataset.gather(torch.arange(4))
        out = model(x, t)
        classes = list(exp.classes_in_this_experience)
        others = [c for c in range(10) if c not in classes]
        trained = exp.current_experience < 2
        assert out[:, others].eq(MASK).all() == trained
        assert not out[:, classes].eq(MASK).any()


def test_active_units_survive_a_state_dict_round_trip():
    bench = SplitDigits(5, return_task_id=True, seed=1)
    model = MultiHeadMLP(num_classes=10, input_size=64, n_tasks=5, hidden_size=16)
    Naive(model, torch.optim.SGD(model.parameters(), lr=0.1), train_mb_size=64,
          evaluator=quiet()).train(bench.train_stream[1])
    restored = MultiHeadMLP(num_classes=10, input_size=64, n_tasks=5, hidden_size=16)
    restored.load_state_dict(model.state_dict())
    restored.eval()
    x, _, t = bench.test_stream[1].dataset.gather(torch.arange(3))
    masked = restored(x, t).eq(MASK)
    classes = list(bench.test_stream[1].classes_in_this_experience)
    assert masked.sum(1).tolist() == [8, 8, 8]
    assert not masked[:, classes].any()


class Trunk(nn.Module):
    """An Avalanche-style multi-task model whose heads appear only through adaptation."""

    takes_task_labels = True

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU())
        self.classifier = MultiHeadClassifier(16)

    def forward(self, x, task_labels):
        return self.classifier(self.features(x), task_labels)


def test_the_optimizer_trains_heads_that_adaptation_adds_and_drops_replaced_ones():
    torch.manual_seed(0)
    bench = SplitDigits(5, return_task_id=True, seed=1)
    model = Trunk()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    strategy = Naive(model, optimizer, train_mb_size=32, evaluator=quiet())
    strategy.eval(bench.test_stream[2])  # eval adds task 2's head, untrained
    for exp in bench.train_stream[:3]:
        strategy.train(exp)
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert in_optimizer == {id(p) for p in model.parameters()}
    assert sorted(model.classifier.heads) == ["0", "1", "2"]
    # task 0's head was widened from 2 to its classes' largest id + 1 and re-created
    head0 = model.classifier.heads["0"]
    classes0 = bench.train_stream[0].classes_in_this_experience
    assert head0.out_features == max(max(classes0) + 1, 2)
    assert all(p in optimizer.state for p in model.parameters())
    assert len(optimizer.state) == len(list(model.parameters()))
    strategy.eval(bench.test_stream[:3])
    accuracy = strategy.evaluator.get_last_metrics()
    assert accuracy["Top1_Acc_Exp/eval_phase/test_stream/Task002/Exp002"] > 0.8


def test_gdumb_keeps_the_active_units_of_earlier_tasks_when_it_resets_the_weights():
    bench = SplitDigits(5, return_task_id=True, seed=1)
    model = MultiHeadMLP(num_classes=10, input_size=64, n_tasks=5, hidden_size=16)
    strategy = GDumb(model, torch.optim.SGD(model.parameters(), lr=0.1), mem_size=60,
                     train_mb_size=32, evaluator=quiet())
    for exp in bench.train_stream[:2]:
        strategy.train(exp)
    active = model.classifier.get_extra_state()
    assert active == {str(e.task_label): sorted(e.classes_in_this_experience)
                      for e in bench.train_stream[:2]}
