"""Avalanche side of the replay-family comparison: one offline strategy on Split Fashion-MNIST.

Protocol (must match cl_runner's setting):

* Split Fashion-MNIST (``SplitFMNIST``), 5 experiences of 2 classes, ``fixed_class_order`` =
  ``torch.randperm(10, generator=torch.Generator().manual_seed(seed)).tolist()``; inputs
  ``ToTensor`` + ``Normalize((0.2860,), (0.3530,))`` for train and test, no augmentation.
  ``--task-incremental`` builds ``SplitFMNIST(return_task_id=True)`` (task label = experience
  index, original class ids kept) and a multi-head model (``MTSimpleMLP``).
* ``torch.manual_seed(seed)`` (and ``random.seed(seed)``) right before the model is built.
  Model: ``SimpleMLP(num_classes=10, input_size=784, hidden_size=512, hidden_layers=1,
  drop_rate=0.5)``; task-incremental: ``MTSimpleMLP(input_size=784, hidden_size=512)`` (same
  784-512 ReLU/Dropout(0.5) trunk, a ``MultiHeadClassifier`` with one masked head per task).
* Adam lr 1e-3 (``--optimizer``, ``--lr``), ``train_epochs=1``, ``train_mb_size=100``,
  ``eval_mb_size=256``, memory 500 (``--mem-size``); Avalanche defaults for everything else.
* After each training experience the whole test stream is evaluated; ``train_s``/``eval_s``
  are the wall-clock seconds of ``strategy.train``/``strategy.eval`` summed over experiences.
* Evaluator: ``EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[])``.

Strategies (``--strategy``): naive, replay, er_ace, der (beta=0), derpp, gdumb, icarl, agem,
bic (fails in its bias-correction stage with torch >= 2.9: the error is caught and reported).

Run with the Python of a virtualenv that has Avalanche 0.6, e.g.::

    /tmp/ava/bin/python scripts/avalanche_strategies.py --strategy derpp --seed 0

Without ``--data-root`` the Debian Fashion-MNIST files are decompressed once into
``/tmp/ava_results/data/FashionMNIST/raw``. Prints one line per experience, then a last line
``RESULT {json}`` (strategy, seed, settings, acc_matrix, final_avg_acc, train_s, eval_s).
"""

from __future__ import annotations

import argparse
import json
import random
import time
import traceback
from typing import Any

import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import MTSimpleMLP, SimpleMLP
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.supervised import (
    AGEM,
    DER,
    ER_ACE,
    BiC,
    GDumb,
    ICaRL,
    Naive,
    Replay,
)
from avalanche.training.templates import SupervisedTemplate
from avalanche_data import class_order, split_fmnist  # scripts/ is on sys.path
from torch import nn

STRATEGIES = ("naive", "replay", "er_ace", "der", "derpp", "gdumb", "icarl", "agem", "bic")


def make_optimizer(name: str, params: Any, lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr)


def build_strategy(args: argparse.Namespace) -> tuple[SupervisedTemplate, str]:
    """Build the model and the Avalanche strategy; return it with a description of the call."""
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    if args.task_incremental:
        model: nn.Module = MTSimpleMLP(input_size=784, hidden_size=512)
        model_desc = "MTSimpleMLP(input_size=784, hidden_size=512)"
    else:
        model = SimpleMLP(num_classes=10, input_size=784, hidden_size=512, hidden_layers=1,
                          drop_rate=0.5)
        model_desc = ("SimpleMLP(num_classes=10, input_size=784, hidden_size=512, "
                      "hidden_layers=1, drop_rate=0.5)")
    evaluator = EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[])
    common: dict[str, Any] = dict(train_mb_size=args.train_mb_size, train_epochs=args.epochs,
                                  eval_mb_size=args.eval_mb_size, device=args.device,
                                  evaluator=evaluator)
    ce = nn.CrossEntropyLoss()
    mem, s = args.mem_size, args.strategy
    if s == "icarl":
        if args.task_incremental:
            raise SystemExit("icarl is class-incremental only")
        assert isinstance(model, SimpleMLP)
        feature_extractor = nn.Sequential(nn.Flatten(), model.features)  # 784 -> 512 features
        classifier = model.classifier  # nn.Linear(512, 10), the MLP's own initialisation
        opt = make_optimizer(args.optimizer, list(feature_extractor.parameters())
                             + list(classifier.parameters()), args.lr)
        strategy: SupervisedTemplate = ICaRL(
            feature_extractor=feature_extractor, classifier=classifier, optimizer=opt,
            memory_size=mem, buffer_transform=None, fixed_memory=True, **common)
        desc = (f"ICaRL(feature_extractor=Sequential(Flatten(), SimpleMLP.features), "
                f"classifier=SimpleMLP.classifier=Linear(512, 10), memory_size={mem}, "
                f"buffer_transform=None, fixed_memory=True)")
        return strategy, desc
    opt = make_optimizer(args.optimizer, model.parameters(), args.lr)
    base = dict(model=model, optimizer=opt, **common)
    bsm = args.batch_size_mem
    if s == "naive":
        strategy, desc = Naive(criterion=ce, **base), "Naive(criterion=CrossEntropyLoss())"
    elif s == "replay":
        strategy = Replay(criterion=ce, mem_size=mem, **base)
        desc = (f"Replay(criterion=CrossEntropyLoss(), mem_size={mem}) -> ReplayPlugin({mem}), "
                f"ExperienceBalancedBuffer({mem}, adaptive_size=True), batch_size_mem=None "
                f"(= train_mb_size)")
    elif s == "er_ace":
        bsm = 10 if bsm is None else bsm
        strategy = ER_ACE(criterion=ce, mem_size=mem, batch_size_mem=bsm, **base)
        desc = f"ER_ACE(criterion=CrossEntropyLoss(), mem_size={mem}, batch_size_mem={bsm})"
    elif s in ("der", "derpp"):
        alpha = 0.1 if args.alpha is None else args.alpha
        beta = (0.0 if s == "der" else 0.5) if args.beta is None else args.beta
        strategy = DER(criterion=ce, mem_size=mem, batch_size_mem=bsm, alpha=alpha, beta=beta,
                       **base)
        desc = (f"DER(criterion=CrossEntropyLoss(), mem_size={mem}, batch_size_mem={bsm}, "
                f"alpha={alpha}, beta={beta})")
    elif s == "gdumb":
        strategy = GDumb(criterion=ce, mem_size=mem, **base)
        desc = f"GDumb(criterion=CrossEntropyLoss(), mem_size={mem})"
    elif s == "agem":
        ppe = mem // 5
        strategy = AGEM(criterion=ce, patterns_per_exp=ppe, sample_size=args.sample_size, **base)
        desc = (f"AGEM(criterion=CrossEntropyLoss(), patterns_per_exp={ppe}, "
                f"sample_size={args.sample_size})")
    elif s == "bic":
        strategy = BiC(criterion=ce, mem_size=mem, **base)
        desc = (f"BiC(criterion=CrossEntropyLoss(), mem_size={mem}) (defaults val_percentage=0.1, "
                f"T=2, stage_2_epochs=200, lamb=-1, lr=0.1)")
    else:
        raise SystemExit(f"unknown strategy {s}")
    return strategy, f"{desc}; model={model_desc}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", choices=STRATEGIES, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=None,
                        help="holds FashionMNIST/raw; default: prepared under /tmp/ava_results")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-mb-size", type=int, default=100)
    parser.add_argument("--eval-mb-size", type=int, default=256)
    parser.add_argument("--mem-size", type=int, default=500)
    parser.add_argument("--batch-size-mem", type=int, default=None,
                        help="er_ace (default 10), der/derpp (default None = train_mb_size)")
    parser.add_argument("--alpha", type=float, default=None, help="der/derpp (default 0.1)")
    parser.add_argument("--beta", type=float, default=None,
                        help="der default 0.0, derpp default 0.5")
    parser.add_argument("--sample-size", type=int, default=64, help="agem")
    parser.add_argument("--task-incremental", action="store_true",
                        help="task labels + multi-head MTSimpleMLP (naive, agem)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    benchmark = split_fmnist(args.seed, args.data_root, args.task_incremental)
    strategy, desc = build_strategy(args)
    settings = {k: v for k, v in vars(args).items() if k not in ("strategy", "seed")}
    settings.update(class_order=class_order(args.seed), avalanche=desc,
                    torch_threads=torch.get_num_threads())

    matrix: list[list[float]] = []
    train_s = eval_s = 0.0
    error = None
    try:
        for i, exp in enumerate(benchmark.train_stream):
            t0 = time.perf_counter()
            strategy.train(exp)
            t1 = time.perf_counter()
            metrics = strategy.eval(benchmark.test_stream)
            t2 = time.perf_counter()
            train_s, eval_s = train_s + t1 - t0, eval_s + t2 - t1
            row = []
            for j in range(5):
                key = next(k for k in metrics if k.startswith(
                    "Top1_Acc_Exp/eval_phase/test_stream/") and k.endswith(f"/Exp{j:03d}"))
                row.append(float(metrics[key]))
            matrix.append(row)
            print(f"exp {i}: train {t1 - t0:6.2f}s eval {t2 - t1:6.2f}s acc "
                  + " ".join(f"{a:.4f}" for a in row) + f"  avg {sum(row) / len(row):.4f}",
                  flush=True)
    except Exception as exc:  # BiC is known to fail with recent torch: report it
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    final = sum(matrix[-1]) / len(matrix[-1]) if len(matrix) == 5 else None
    result = {"strategy": args.strategy + ("_ti" if args.task_incremental else ""),
              "seed": args.seed, "settings": settings, "acc_matrix": matrix,
              "final_avg_acc": final, "train_s": train_s, "eval_s": eval_s, "error": error}
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
