"""Hand-written online experience replay on Split Fashion-MNIST: the yardstick for
``cl-run protocol=online``.

What a researcher would write without a framework, in tensors: decode the gzipped IDX files
(as scripts/reference_er.py),
normalise once, split the classes with cl_runner's class order, cut every experience into
shuffled chunks of 10 samples, and for every chunk take one SGD step (lr 0.1) of a SimpleMLP
(784-512-10, dropout 0.5) on the 10 incoming samples plus 10 samples drawn from a 1000-sample
reservoir, then offer the chunk to the reservoir (random keys, the largest 1000 kept: one
``topk``). No DataLoader, no plugins, no tracking, no checkpoints. Evaluation on the whole
test stream at the end (and every ``--eval-every`` samples if given).

It draws from torch's global RNG in the same order as ``cl-run protocol=online buffer=reservoir
dataloader.batch_size_mem=10`` (model init, per chunk: permutation of the chunk, permutation
of the memory, dropout, reservoir keys), so for a seed it should reproduce cl-run's accuracies
up to float noise: a check that both do the same math.

    python scripts/reference_online.py --seed 0 [--threads 1] [--max-steps N]

Prints a human line and a last line ``RESULT {json}`` (scripts/bench_online.py parses it):
steps, train_s (the training loop with the reservoir updates), steps_per_s, eval_s,
eval_samples_per_s, final_avg_acc and the final accuracies.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812 - the usual spelling
from reference_er import load  # the same decoding (scripts/ is on sys.path)
from torch import nn


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, exps: list[torch.Tensor],
             batch: int) -> list[float]:
    model.eval()
    accs = []
    with torch.no_grad():
        for pos in exps:
            correct = 0
            for start in range(0, len(pos), batch):
                idx = pos[start : start + batch]
                correct += (model(x[idx]).argmax(1) == y[idx]).sum()
            accs.append(int(correct) / len(pos))
    model.train()
    return accs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mirror", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--experiences", type=int, default=5)
    parser.add_argument("--experience-size", type=int, default=10)
    parser.add_argument("--batch-size-mem", type=int, default=10)
    parser.add_argument("--mem-size", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--eval-every", type=int, default=0, help="samples; 0: at the end only")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    folder = Path(args.mirror)
    x_train, y_train = load(folder, "train")
    x_test, y_test = load(folder, "t10k")
    torch.manual_seed(args.seed)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(args.seed)).tolist()
    k = 10 // args.experiences
    groups = [sorted(order[i * k : (i + 1) * k]) for i in range(args.experiences)]
    train_exps = [torch.nonzero(torch.isin(y_train, torch.tensor(g))).flatten() for g in groups]
    test_exps = [torch.nonzero(torch.isin(y_test, torch.tensor(g))).flatten() for g in groups]

    model = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 512), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(512, 10),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    mem_rows = torch.empty(0, dtype=torch.long)  # storage rows, descending keys
    mem_keys = torch.empty(0)
    size, bsm = args.experience_size, args.batch_size_mem
    steps, seen, train_s, eval_s, anytime = 0, 0, 0.0, 0.0, []
    model.train()
    t0 = time.perf_counter()
    for pos in train_exps:
        split = pos[torch.randperm(len(pos), generator=torch.Generator().manual_seed(args.seed))]
        for start in range(0, len(split), size):
            if args.max_steps is not None and steps >= args.max_steps:
                break
            chunk = split[start : start + size]
            idx = chunk[torch.randperm(len(chunk))]
            if len(mem_rows):
                idx = torch.cat([idx, mem_rows[torch.randperm(len(mem_rows))[:bsm]]])
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
            keys = torch.cat([torch.rand(len(chunk)), mem_keys])
            top = torch.topk(keys, min(args.mem_size, len(keys)))
            mem_rows, mem_keys = torch.cat([chunk, mem_rows])[top.indices], top.values
            steps += 1
            seen += len(chunk)
            if args.eval_every and seen % args.eval_every < len(chunk):
                t1 = time.perf_counter()
                anytime.append((seen, evaluate(model, x_test, y_test, test_exps,
                                               args.eval_batch_size)))
                eval_s += time.perf_counter() - t1
    train_s = time.perf_counter() - t0 - eval_s
    t1 = time.perf_counter()
    accs = evaluate(model, x_test, y_test, test_exps, args.eval_batch_size)
    final_eval_s = time.perf_counter() - t1
    result = {
        "seed": args.seed, "threads": torch.get_num_threads(), "steps": steps,
        "train_s": train_s, "steps_per_s": steps / train_s, "eval_s": final_eval_s,
        "eval_samples_per_s": len(y_test) / final_eval_s, "anytime_eval_s": eval_s,
        "anytime_points": len(anytime), "accuracies": accs, "final_avg_acc": sum(accs) / len(accs),
    }
    print(f"{steps} steps in {train_s:.2f}s ({steps / train_s:.0f} steps/s), final average "
          f"accuracy {result['final_avg_acc']:.4f}, eval {len(y_test) / final_eval_s:.0f} "
          "samples/s")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
