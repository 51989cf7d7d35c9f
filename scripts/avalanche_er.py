"""The benchmark's experiment in Avalanche (``avalanche-lib``): variant C of scripts/bench_er.py.

Same setting as ``cl-run`` and scripts/reference_er.py: Split Fashion-MNIST with cl_runner's
class order for the seed, SimpleMLP (512 hidden, dropout 0.5), Adam 1e-3, 1 epoch, 100 current +
100 memory samples per step from a 500-sample ClassBalancedBuffer, evaluation on the whole test
stream after each experience. Run it with the Python of a virtualenv that has Avalanche (see
scripts/bench_er.py); ``--data-root`` must hold torchvision's ``FashionMNIST/raw`` files (a
``cl-run`` data root does after one run).

Prints a last line ``RESULT {json}`` in reference_er.py's format (train_s, eval_s, final_avg_acc).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import SimpleMLP
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer
from avalanche.training.supervised import Naive
from avalanche_data import split_fmnist  # scripts/ is on sys.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    benchmark = split_fmnist(args.seed, args.data_root)
    model = SimpleMLP(num_classes=10, input_size=784, hidden_size=512, hidden_layers=1,
                      drop_rate=0.5)
    strategy = Naive(
        model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        criterion=torch.nn.CrossEntropyLoss(), train_mb_size=100, train_epochs=1,
        eval_mb_size=args.eval_batch_size, device=args.device,
        plugins=[ReplayPlugin(mem_size=500, batch_size_mem=100,
                              storage_policy=ClassBalancedBuffer(500, adaptive_size=True))],
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[]),
    )
    train_s = eval_s = 0.0
    for exp in benchmark.train_stream:
        t0 = time.perf_counter()
        strategy.train(exp)
        t1 = time.perf_counter()
        metrics = strategy.eval(benchmark.test_stream)
        t2 = time.perf_counter()
        train_s, eval_s = train_s + t1 - t0, eval_s + t2 - t1
    accs = [metrics[f"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp{j:03d}"] for j in range(5)]
    result = {"seed": args.seed, "train_s": train_s, "eval_s": eval_s,
              "final_avg_acc": sum(accs) / len(accs)}
    print(f"train {train_s:.2f}s  eval {eval_s:.2f}s  final average accuracy "
          f"{result['final_avg_acc']:.4f}")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
