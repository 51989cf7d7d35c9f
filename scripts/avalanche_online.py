"""Avalanche side of the online-CL comparison: one strategy on online Split Fashion-MNIST.

Protocol (must match cl_runner's online setting):

* Split Fashion-MNIST as in scripts/avalanche_strategies.py: ``SplitFMNIST``, 5 experiences of
  2 classes, ``fixed_class_order`` = ``randperm(10, generator=Generator().manual_seed(seed))``,
  ``ToTensor`` + ``Normalize((0.2860,), (0.3530,))``, no augmentation.
* The training stream is cut with
  ``avalanche.benchmarks.scenarios.online.split_online_stream(benchmark.train_stream,
  experience_size=10, shuffle=True, drop_last=False, seed=seed)`` into 6000 chunks of 10 samples.
  The chunks are materialised (outside the timed region), then the whole online stream is given
  to ONE ``strategy.train(chunks, eval_streams=[])`` call (as Avalanche's
  ``examples/online_replay.py`` does; ``eval_streams=[]`` so nothing is evaluated meanwhile).
  Every chunk is an Avalanche experience (``access_task_boundaries=False``), so per-experience
  hooks (memory updates, loader and optimizer re-creation) run per chunk.
* ``torch.manual_seed(seed)`` and ``random.seed(seed)`` right before the model is built:
  ``SimpleMLP(num_classes=10, input_size=784, hidden_size=512, hidden_layers=1,
  drop_rate=0.5)``; SGD lr 0.1 (no momentum), ``train_mb_size=10``, 1 pass
  (``train_epochs=1``), memory 1000, ``batch_size_mem=10``, ``eval_mb_size=256``.
* Strategies (``--strategy``):
  naive: ``Naive``;
  er: ``Naive`` + ``ReplayPlugin(mem_size=1000, batch_size_mem=10,
  storage_policy=ReservoirSamplingBuffer(1000))``;
  er_ace: ``ER_ACE(mem_size=1000, batch_size_mem=10)``;
  mir: ``MIR(mem_size=1000, subsample=50, batch_size_mem=10)``;
  gss_greedy: ``GSS_greedy(mem_size=1000, mem_strength=10, input_size=[1, 28, 28])``.
* Measured: training steps (``strategy.clock.train_iterations``) and the seconds of the
  ``train`` call (steps/s), then one ``strategy.eval(benchmark.test_stream)`` (test samples/s)
  and the final average accuracy over the 5 test experiences. ``--max-steps N`` trains on the
  first chunks only, until N steps (smoke runs; steps/s measured on those steps).

Run with the Python of a virtualenv that has Avalanche 0.6, e.g.::

    /tmp/ava/bin/python scripts/avalanche_online.py --strategy er --seed 0

Prints a last line ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
import traceback
from typing import Any

import torch
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import SimpleMLP
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from avalanche.training.storage_policy import ReservoirSamplingBuffer
from avalanche.training.supervised import ER_ACE, MIR, GSS_greedy, Naive
from avalanche.training.templates import SupervisedTemplate
from avalanche_data import class_order, split_fmnist  # scripts/ is on sys.path
from torch import nn

STRATEGIES = ("naive", "er", "er_ace", "mir", "gss_greedy")


def build_strategy(args: argparse.Namespace) -> tuple[SupervisedTemplate, str]:
    """Build the model and the Avalanche strategy; return it with a description of the call."""
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    model = SimpleMLP(num_classes=10, input_size=784, hidden_size=512, hidden_layers=1,
                      drop_rate=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    evaluator = EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[])
    base: dict[str, Any] = dict(
        model=model, optimizer=optimizer, criterion=nn.CrossEntropyLoss(),
        train_mb_size=args.train_mb_size, train_epochs=args.passes,
        eval_mb_size=args.eval_mb_size, device=args.device, evaluator=evaluator)
    mem, bsm = args.mem_size, args.batch_size_mem
    if args.strategy == "naive":
        return Naive(**base), "Naive()"
    if args.strategy == "er":
        plugin = ReplayPlugin(mem_size=mem, batch_size_mem=bsm,
                              storage_policy=ReservoirSamplingBuffer(mem))
        return Naive(plugins=[plugin], **base), (
            f"Naive(plugins=[ReplayPlugin(mem_size={mem}, batch_size_mem={bsm}, "
            f"storage_policy=ReservoirSamplingBuffer({mem}))])")
    if args.strategy == "er_ace":
        return ER_ACE(mem_size=mem, batch_size_mem=bsm, **base), (
            f"ER_ACE(mem_size={mem}, batch_size_mem={bsm})")
    if args.strategy == "mir":
        return MIR(mem_size=mem, subsample=args.subsample, batch_size_mem=bsm, **base), (
            f"MIR(mem_size={mem}, subsample={args.subsample}, batch_size_mem={bsm})")
    return GSS_greedy(mem_size=mem, mem_strength=args.mem_strength, input_size=[1, 28, 28],
                      **base), (
        f"GSS_greedy(mem_size={mem}, mem_strength={args.mem_strength}, "
        f"input_size=[1, 28, 28]) (memory batch fixed at ReplayDataLoader's 32)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", choices=STRATEGIES, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=None,
                        help="holds FashionMNIST/raw; default: prepared under /tmp/ava_results")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--experience-size", type=int, default=10)
    parser.add_argument("--train-mb-size", type=int, default=10)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--eval-mb-size", type=int, default=256)
    parser.add_argument("--mem-size", type=int, default=1000)
    parser.add_argument("--batch-size-mem", type=int, default=10)
    parser.add_argument("--subsample", type=int, default=50, help="mir")
    parser.add_argument("--mem-strength", type=int, default=10, help="gss_greedy")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    benchmark = split_fmnist(args.seed, args.data_root)
    t0 = time.perf_counter()
    online = split_online_stream(benchmark.train_stream, experience_size=args.experience_size,
                                 shuffle=True, drop_last=False, seed=args.seed)
    chunks, planned = [], 0
    for chunk in online:
        if args.max_steps is not None and planned >= args.max_steps:
            break
        chunks.append(chunk)
        planned += math.ceil(len(chunk.dataset) / args.train_mb_size) * args.passes
    split_s = time.perf_counter() - t0

    strategy, desc = build_strategy(args)
    settings = {k: v for k, v in vars(args).items() if k not in ("strategy", "seed")}
    settings.update(class_order=class_order(args.seed), avalanche=desc,
                    n_chunks=len(chunks), torch_threads=torch.get_num_threads(),
                    train_call="one strategy.train(chunks, eval_streams=[])")
    result: dict[str, Any] = {"strategy": args.strategy, "seed": args.seed, "settings": settings,
                              "split_s": split_s, "error": None}
    try:
        t0 = time.perf_counter()
        strategy.train(chunks, eval_streams=[])
        train_s = time.perf_counter() - t0
        steps = strategy.clock.train_iterations
        print(f"trained {steps} steps on {len(chunks)} chunks in {train_s:.2f}s "
              f"({steps / train_s:.1f} steps/s)", flush=True)
        n_test = sum(len(exp.dataset) for exp in benchmark.test_stream)
        t0 = time.perf_counter()
        metrics = strategy.eval(benchmark.test_stream)
        eval_s = time.perf_counter() - t0
        accs = [float(metrics[f"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp{j:03d}"])
                for j in range(5)]
        result.update(steps=steps, train_s=train_s, steps_per_s=steps / train_s,
                      eval_s=eval_s, eval_samples=n_test, eval_samples_per_s=n_test / eval_s,
                      acc_per_exp=accs, final_avg_acc=sum(accs) / len(accs))
        print(f"eval {eval_s:.2f}s ({n_test / eval_s:.0f} samples/s)  acc "
              + " ".join(f"{a:.4f}" for a in accs) + f"  avg {result['final_avg_acc']:.4f}")
    except Exception as exc:
        traceback.print_exc()
        result["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        result["steps_done"] = strategy.clock.train_iterations
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
