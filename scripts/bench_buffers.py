"""Benchmark: replay-buffer updates stay O(experience) in time and O(buffer) in memory.

Synthetic streams on tensor storage (16 float features, 10 classes drawn uniformly, so every
class group is revisited by every experience): 5 experiences of 10k, 100k and 1M samples each,
offered to a ReservoirSamplingBuffer and to a class-grouped ParametricBuffer (random
selection), both of ``--max-size`` samples. Per update it measures:

- time per offered sample (median over the updates) and the marginal time per sample between
  consecutive sizes (the slope: what one more sample costs). Linear scaling means a constant
  slope; target: slopes within 2x of each other. Time per sample itself falls with size, as a
  fixed cost per update (~0.2 ms of Python and op launches) is spread over more samples;
- the features of one experience (what a copy of it would cost), for comparison;
- bytes the buffer holds afterwards (its index and key tensors; the stream's storage is
  shared, not copied): must depend on the buffer size only;
- peak RSS growth during the update (``/proc/self/clear_refs`` resets the high-water mark):
  the update's working memory, which scales with the experience offered, not with the stream
  seen so far (it must not grow from the first update to the last).

A second table offers a long stream of small experiences (``--long`` updates of 10k samples,
1M samples in all by default) and compares the first ten updates with the last ten: time,
bytes held and peak RSS must not grow with the number of samples seen (Avalanche's buffers
slowed down 100x over such streams before its PR #1217).

    python scripts/bench_buffers.py [--max-size 500] [--experiences 5] [--long 100] [--threads N]

Prints a table, then the same as Markdown.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from bench_tables import table  # scripts/ is on sys.path when a script in it runs

from cl_runner.buffers import ParametricBuffer, ReservoirSamplingBuffer
from cl_runner.data.dataset import ClassificationDataset

SIZES = (10_000, 100_000, 1_000_000)
FEATURES = 16


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> bool:
    """Reset the RSS high-water mark (Linux); False where it is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def held_bytes(buffer: object) -> int:
    """Bytes of the tensors a buffer's state holds (its indices, keys, payloads): what it
    keeps besides the stream's shared storage, counted once per storage."""
    seen: set[int] = set()

    def walk(value: object) -> int:
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            if storage.data_ptr() in seen:
                return 0
            seen.add(storage.data_ptr())
            return storage.nbytes()
        if isinstance(value, dict):
            return sum(walk(v) for v in value.values())
        if isinstance(value, list | tuple):
            return sum(walk(v) for v in value)
        return 0

    return walk(buffer.state_dict())


def make_stream(size: int, n_exp: int, seed: int) -> tuple[ClassificationDataset, list]:
    """``n_exp`` experiences of ``size`` samples: index views on one storage."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(size * n_exp, FEATURES, generator=gen)
    y = torch.randint(0, 10, (size * n_exp,), generator=gen)
    data = ClassificationDataset(x, y)
    exps = [SimpleNamespace(dataset=data.subset(torch.arange(i * size, (i + 1) * size)),
                            current_experience=i) for i in range(n_exp)]
    return data, exps


def new_buffer(kind: str, max_size: int) -> ReservoirSamplingBuffer | ParametricBuffer:
    return (ReservoirSamplingBuffer(max_size) if kind == "reservoir"
            else ParametricBuffer(max_size, groupby="class"))


def offer(buffer, stream: ClassificationDataset, exps: list) -> tuple[list, list, list]:
    """Update ``buffer`` with each experience: seconds, KiB held and peak RSS growth (MB)."""
    times, held, peaks = [], [], []
    for exp in exps:
        base = rss_kb("VmRSS")
        peak_ok = reset_peak()
        start = time.perf_counter()
        buffer.update(SimpleNamespace(experience=exp))
        times.append(time.perf_counter() - start)
        peaks.append((rss_kb("VmHWM") - base) / 1024 if peak_ok else float("nan"))
        held.append(held_bytes(buffer) / 1024)
    return times, held, peaks


def bench(kind: str, size: int, args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    stream, exps = make_stream(size, args.experiences, seed=size)
    buffer = new_buffer(kind, args.max_size)
    times, held, peaks = offer(buffer, stream, exps)
    assert len(buffer.buffer) == args.max_size
    return {"kind": kind, "size": size, "ns_per_sample": statistics.median(times) / size * 1e9,
            "ms_per_update": statistics.median(times) * 1e3, "held": held, "peaks": peaks}


def long_stream(kind: str, args: argparse.Namespace) -> list[str]:
    """First ten against last ten updates of a long stream of 10k-sample experiences."""
    torch.manual_seed(0)
    stream, exps = make_stream(10_000, args.long, seed=1)
    times, held, peaks = offer(new_buffer(kind, args.max_size), stream, exps)
    times = [t * 1e3 for t in times]
    first, last = slice(0, 10), slice(-10, None)
    return [kind, f"{len(stream):,}",
            f"{statistics.median(times[first]):.2f} / {statistics.median(times[last]):.2f}",
            f"{max(held[first]):.1f} / {max(held[last]):.1f}",
            f"{max(peaks[first]):.1f} / {max(peaks[last]):.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-size", type=int, default=500)
    parser.add_argument("--experiences", type=int, default=5)
    parser.add_argument("--long", type=int, default=100,
                        help="experiences of 10k samples in the long stream (0: skip it)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    results = [bench(kind, size, args) for kind in ("reservoir", "parametric")
               for size in SIZES]
    rows = []
    for kind in ("reservoir", "parametric"):
        mine = [r for r in results if r["kind"] == kind]
        slopes = [(b["ms_per_update"] - a["ms_per_update"]) * 1e6 / (b["size"] - a["size"])
                  for a, b in itertools.pairwise(mine)]
        spread = max(slopes) / min(slopes)
        for r, slope in zip(mine, [None, *slopes], strict=True):
            held = sorted(set(r["held"]))
            rows.append([
                kind, f"{r['size']:,}", f"{r['size'] * FEATURES * 4 / 2**20:.1f}",
                f"{r['ms_per_update']:.2f}", f"{r['ns_per_sample']:.1f}",
                "" if slope is None else f"{slope:.1f}",
                "" if slope is None else f"{spread:.2f}x ({'yes' if spread <= 2 else 'NO'})",
                "/".join(f"{h:.1f}" for h in held),
                f"{r['peaks'][0]:.1f} / {max(r['peaks'][1:] or r['peaks']):.1f}",
            ])
    headers = ["buffer", "experience size", "experience features MB", "ms/update", "ns/sample",
               "marginal ns/sample", "max/min slope (<= 2x)", "KiB held after updates",
               "peak RSS +MB (1st / later max)"]
    sections = [(f"Buffer updates: {args.experiences} experiences per size, max_size "
                 f"{args.max_size}, {torch.get_num_threads()} torch threads",
                 *table(headers, rows))]
    if args.long:
        rows = [long_stream(kind, args) for kind in ("reservoir", "parametric")]
        headers = ["buffer", "samples seen", "ms/update (first 10 / last 10)",
                   "KiB held (first 10 / last 10)", "peak RSS +MB (first 10 / last 10)"]
        sections.append((f"Long stream: {args.long} experiences of 10,000 samples",
                         *table(headers, rows)))
    for title, text, _ in sections:
        print(f"{title}\n{text}\n")
    print("--- Markdown ---")
    for title, _, md in sections:
        print(f"\n**{title}**\n\n{md}")


if __name__ == "__main__":
    main()
