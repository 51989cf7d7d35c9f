"""Hand-written experience replay on Split Fashion-MNIST: the yardstick for ``cl-run``.

What a researcher would write without a framework: decode the gzipped IDX files with gzip
and numpy, normalise once, split the classes with cl_runner's class order, train a SimpleMLP
with Adam on 100 current + 100 memory samples per step, keep a class-balanced reservoir of
500 samples, evaluate on the whole test stream after each experience. No DataLoader, no
plugins, no tracking, no checkpoints.

It draws from torch's global RNG in the same order as ``cl-run`` (model init, per-epoch
permutation of the current data, then of the memory, dropout, reservoir keys), so for a seed
it should reproduce cl-run's accuracies up to float noise: a check that both do the same math.

    python scripts/reference_er.py --seed 0 [--mirror /usr/share/datasets/fashion-mnist] \
        [--device cuda]

With ``--device cuda`` the data, the model and the index tensors live on the GPU (index orders
are drawn on the CPU, as cl-run does, and moved once per experience).

Prints a human line and a last line ``RESULT {json}`` that scripts/bench_er.py parses:
train_s (training loops, as cl-run's logged time/train_s: without the buffer updates), buffer_s,
eval_s, their CPU times, final_avg_acc and the accuracy matrix.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual spelling
from torch import nn

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST, as cl_runner's SplitFMNIST


def read_idx(path: Path, header: int) -> torch.Tensor:
    with gzip.open(path, "rb") as f:
        return torch.from_numpy(np.frombuffer(f.read(), np.uint8, offset=header).copy())


def load(folder: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz", 16).view(-1, 1, 28, 28)
    y = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 8).long()
    # the same arithmetic as cl_runner's NormalizePixels, once for the whole split
    scale = torch.tensor(1.0 / (255.0 * STD)).view(1, 1, 1, 1)
    shift = torch.tensor(-MEAN / STD).view(1, 1, 1, 1)
    return torch.addcmul(shift, x.float(), scale), y


def class_split(y: torch.Tensor, groups: list[list[int]]) -> list[torch.Tensor]:
    return [torch.nonzero(torch.isin(y, torch.tensor(g))).flatten() for g in groups]


def update_memory(
    memory: dict[int, tuple[torch.Tensor, torch.Tensor]], y: torch.Tensor, pos: torch.Tensor,
    size: int,
) -> None:
    """Per-class reservoir (largest U[0,1) keys kept), capacity shared evenly by the classes."""
    labels = y[pos]
    new = sorted(labels.unique().tolist())
    seen = sorted([*memory, *new])
    share, extra = divmod(size, len(seen))
    cap = {c: share + (k < extra) for k, c in enumerate(seen)}
    for c in new:
        keys = torch.rand(int((labels == c).sum()))
        top = torch.topk(keys, min(cap[c], len(keys)))
        memory[c] = (pos[labels == c][top.indices], top.values)
    for c, (idx, keys) in memory.items():
        memory[c] = (idx[: cap[c]], keys[: cap[c]])


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer stops after it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mirror", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--experiences", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--batch-size-mem", type=int, default=100)
    parser.add_argument("--mem-size", type=int, default=500)
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)

    torch.manual_seed(args.seed)
    folder = Path(args.mirror)
    x_train, y_train = load(folder, "train")
    x_test, y_test = load(folder, "t10k")
    order = torch.randperm(10, generator=torch.Generator().manual_seed(args.seed)).tolist()
    k = 10 // args.experiences
    groups = [sorted(order[i * k : (i + 1) * k]) for i in range(args.experiences)]
    train_exps, test_exps = class_split(y_train, groups), class_split(y_test, groups)
    y_train_cpu = y_train  # reservoir updates index the labels on the CPU, as cl-run's buffers
    x_train, y_train, x_test, y_test = (t.to(device) for t in (x_train, y_train, x_test, y_test))
    test_exps = [pos.to(device) for pos in test_exps]

    model = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 512), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(512, 10),
    )
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    memory: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    rows: list[list[float]] = []
    spent = dict.fromkeys(("train_s", "buffer_s", "eval_s", "train_cpu_s", "eval_cpu_s"), 0.0)
    bs, bs_mem = args.batch_size, args.batch_size_mem

    for pos in train_exps:
        t0, c0 = time.perf_counter(), time.process_time()
        model.train()
        current = pos[torch.randperm(len(pos))].to(device)
        mem = torch.cat([idx for idx, _ in memory.values()]) if memory else None
        if mem is not None:
            mem_order, mem_at = mem[torch.randperm(len(mem))].to(device), 0
        for start in range(0, len(current), bs):
            idx = current[start : start + bs]
            if mem is not None:
                if mem_at >= len(mem_order):  # memory exhausted: next pass, fresh order
                    mem_order, mem_at = mem[torch.randperm(len(mem))].to(device), 0
                idx = torch.cat([idx, mem_order[mem_at : mem_at + bs_mem]])
                mem_at += bs_mem
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
        synchronize(device)
        t1, c1 = time.perf_counter(), time.process_time()
        update_memory(memory, y_train_cpu, pos, args.mem_size)
        t2, c2 = time.perf_counter(), time.process_time()
        model.eval()
        row = []
        with torch.no_grad():
            for test_pos in test_exps:
                correct = 0
                for start in range(0, len(test_pos), args.eval_batch_size):
                    idx = test_pos[start : start + args.eval_batch_size]
                    correct += (model(x_test[idx]).argmax(1) == y_test[idx]).sum()
                row.append(int(correct) / len(test_pos))
        rows.append(row)
        t3, c3 = time.perf_counter(), time.process_time()
        for key, value in (("train_s", t1 - t0), ("buffer_s", t2 - t1), ("eval_s", t3 - t2),
                           ("train_cpu_s", c1 - c0), ("eval_cpu_s", c3 - c2)):
            spent[key] += value

    result = {"seed": args.seed, **spent, "final_avg_acc": sum(rows[-1]) / len(rows[-1]),
              "matrix": rows}
    print(f"train {spent['train_s']:.2f}s  eval {spent['eval_s']:.2f}s  "
          f"(buffer updates {spent['buffer_s'] * 1000:.1f}ms)  "
          f"final average accuracy {result['final_avg_acc']:.4f}")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
