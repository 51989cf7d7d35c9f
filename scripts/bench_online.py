"""Benchmark: ``cl-run protocol=online`` against a hand-written loop and Avalanche 0.6.

Experiment (the online issue's): Split Fashion-MNIST (full data, Debian mirror), 5
experiences of 2 classes, each cut into shuffled chunks of 10 samples (6,000 chunks), one SGD
step per chunk (lr 0.1, no momentum) on 10 incoming + 10 memory samples, SimpleMLP (512
hidden, dropout 0.5), memory 1000, evaluation batches of 256.

Speed (``--speed-rounds``, online ER = Replay over a reservoir): every variant is its own
process and the rounds alternate them (rotating their order) so the machine's load hits all
alike; the tables give medians and the 1-minute load average around each measurement.

- A ``cl-run protocol=online buffer=reservoir buffer.max_size=1000
  dataloader.batch_size_mem=10`` (tracking=none): steps/s = its logged ``train/iterations``
  over ``time/train_s`` (the whole online stream, every per-chunk cost included); evaluation
  throughput = test samples / ``time/eval_s`` (median of its 5 whole-test-stream evaluations).
- B ``scripts/reference_online.py``: the same math as a bare tensor loop (same RNG order: its
  accuracy equals A's).
- A/B paired (``--paired-rounds``): the same two loops in ONE process, alternating segments of
  500 chunks (cl-run's strategy with the runner's per-step plugins, exactly as ``cl-run``
  trains a segment of chunks, against the reference step), so that both see the same load at
  the same moments; the ratio is the median over segments. On a shared machine this is the
  measure to trust; the whole-process rounds add start-up and load drift.
- C ``scripts/avalanche_online.py --strategy er`` (Avalanche's OnlineNaive-equivalent Naive +
  ReplayPlugin(ReservoirSamplingBuffer) over split_online_stream), on ``--avalanche-steps``
  steps, when ``--avalanche-python`` can import Avalanche (skipped with a message otherwise).

Accuracy (``--seeds``, strategies ``--strategies``): cl-run's final average accuracy next to
Avalanche's for er, er_ace, mir (subsample 50) and gss_greedy (mem_strength 10). Avalanche's
numbers are read from ``--avalanche-results`` (``online_<strategy>_s<seed>.json``, written by
scripts/avalanche_online.py's RESULT line) when present, else measured if Avalanche is there.
Avalanche 0.6's GSS_greedy fails at the second online chunk (it asks for ``n // batch`` memory
subsets, none while the memory is smaller than the batch, then takes the max of an empty
sequence); its row compares with Avalanche run with ONE fix (``GSS_FIX``: at least one
subset), read from ``--avalanche-fixed-results`` (``ava_gss_fixed_s<seed>.json``) or measured.
Avalanche's GSS replays 32 memory samples per step (its ReplayDataLoader default, not
settable), so cl-run's GSS row uses ``strategy.batch_size_mem=32`` too. ``gss_greedy_bugs`` is
cl-run's GSS with ``strategy.avalanche_bugs=true`` (Avalanche's scoring bugs reproduced).

    python scripts/bench_online.py [--speed-rounds 3] [--seeds 0 1 2] [--threads 1] \
        [--avalanche-python /tmp/ava/bin/python] [--avalanche-results /tmp/ava_results]

Prints plain tables, then the same as Markdown (for the README).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_tables import result_line, table  # scripts/ is on sys.path when a script in it runs

HERE = Path(__file__).resolve().parent
MIRROR = "/usr/share/datasets/fashion-mnist"
TARGETS = {"reference_ratio": 0.67, "avalanche_steps": 5.0, "avalanche_eval": 10.0,
           "acc_points": 2.0}
COMMON = ["benchmark=split_fmnist", "protocol=online", "model=mlp", "model.hidden_size=512",
          "model.drop_rate=0.5", "optimizer=sgd", "optimizer.lr=0.1", "optimizer.momentum=0",
          "strategy.eval_mb_size=256", "tracking=none"]
METHODS = {
    "er": ["strategy=replay", "buffer=reservoir", "buffer.max_size=1000",
           "dataloader.batch_size_mem=10"],
    "er_ace": ["strategy=er_ace", "buffer=class_balanced", "buffer.max_size=1000",
               "strategy.batch_size_mem=10"],
    "mir": ["strategy=mir", "buffer.max_size=1000", "strategy.subsample=50",
            "strategy.batch_size_mem=10"],
    "gss_greedy": ["strategy=gss_greedy", "strategy.mem_size=1000", "strategy.mem_strength=10",
                   "strategy.batch_size_mem=32"],
}
METHODS["gss_greedy_bugs"] = [*METHODS["gss_greedy"], "strategy.avalanche_bugs=true"]
GSS_FIX = """
import runpy, sys
from avalanche.training.plugins import gss_greedy
original = gss_greedy.GSS_greedyPlugin.get_rand_mem_grads
def at_least_one_subset(self, strategy, grad_dims, gss_batch_size):
    n = self.ext_mem_list_current_index
    return original(self, strategy, grad_dims, max(1, min(gss_batch_size, n)))
gss_greedy.GSS_greedyPlugin.get_rand_mem_grads = at_least_one_subset
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, script.rsplit("/", 1)[0])
runpy.run_path(script, run_name="__main__")
"""


def load() -> float:
    return os.getloadavg()[0]



class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_online_"))
        (self.work / "logs").mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(HERE.parent), self.env.get("PYTHONPATH")) if p)
        self.count = 0

    def _run(self, cmd: list[str], name: str) -> tuple[Path, float, float, float]:
        self.count += 1
        log = self.work / "logs" / f"{self.count:03d}-{name}.log"
        before, start = load(), time.perf_counter()
        with open(log, "w") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        wall, after = time.perf_counter() - start, load()
        if proc.returncode != 0:
            raise RuntimeError(f"exit code {proc.returncode}, see {log}:\n"
                               f"{log.read_text()[-3000:]}")
        return log, wall, before, after

    def cl_run(self, method: str, seed: int) -> dict:
        run_dir = self.work / "runs" / f"{self.count + 1:03d}-{method}-s{seed}"
        cmd = [sys.executable, "-m", "cl_runner.cli", *COMMON, *METHODS[method], f"seed={seed}",
               f"benchmark.mirror={self.args.mirror}", f"protocol.num_threads={self.args.threads}",
               f"paths.output_root={self.work / 'out'}", f"paths.data_root={self.work / 'data'}",
               f"hydra.run.dir={run_dir}"]
        _, wall, before, after = self._run(cmd, f"clrun-{method}-s{seed}")
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        rows = [r for r in rows if "accuracy/stream" in r]
        n_test = 10000
        return {"steps": sum(r["train/iterations"] for r in rows),
                "steps_per_s": sum(r["train/iterations"] for r in rows)
                / sum(r["time/train_s"] for r in rows),
                "eval_samples_per_s": n_test / statistics.median(r["time/eval_s"] for r in rows),
                "final_avg_acc": rows[-1]["accuracy/average_seen"], "wall_s": wall,
                "load": (before, after)}

    def reference(self, seed: int) -> dict:
        cmd = [sys.executable, str(HERE / "reference_online.py"), f"--seed={seed}",
               f"--mirror={self.args.mirror}", f"--threads={self.args.threads}"]
        log, wall, before, after = self._run(cmd, f"reference-s{seed}")
        return {**result_line(log), "wall_s": wall, "load": (before, after)}

    def avalanche(self, method: str, seed: int, max_steps: int | None,
                  fixed: bool = False) -> dict:
        cmd = [self.args.avalanche_python, *(["-c", GSS_FIX] if fixed else []),
               str(HERE / "avalanche_online.py"), f"--strategy={method}", f"--seed={seed}",
               f"--threads={self.args.threads}"]
        if max_steps:
            cmd.append(f"--max-steps={max_steps}")
        log, wall, before, after = self._run(cmd, f"avalanche-{method}-s{seed}")
        return {**result_line(log), "wall_s": wall, "load": (before, after)}


def avalanche_available(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import avalanche"], capture_output=True,
                              timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _load(values: list[tuple[float, float]]) -> str:
    flat = [v for pair in values for v in pair]
    return f"{min(flat):.1f}-{max(flat):.1f}"


def speed(bench: Bench, have_ava: bool) -> list[tuple[str, str, str]]:
    rounds = bench.args.speed_rounds
    variants = ["A", "B", *(["C"] if have_ava else [])]
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants[r % len(variants):] + variants[: r % len(variants)]:
            if v == "A":
                runs[v].append(bench.cl_run("er", 0))
            elif v == "B":
                runs[v].append(bench.reference(0))
            else:
                runs[v].append(bench.avalanche("er", 0, bench.args.avalanche_steps))
            print(f"round {r}: {v} {runs[v][-1]['steps_per_s']:.1f} steps/s, eval "
                  f"{runs[v][-1]['eval_samples_per_s']:.0f} samples/s, load "
                  f"{runs[v][-1]['load'][0]:.1f}->{runs[v][-1]['load'][1]:.1f}", flush=True)
    med = {v: statistics.median(x["steps_per_s"] for x in runs[v]) for v in variants}
    ev = {v: statistics.median(x["eval_samples_per_s"] for x in runs[v]) for v in variants}
    paired = [a["steps_per_s"] / b["steps_per_s"] for a, b in zip(runs["A"], runs["B"],
                                                                   strict=True)]
    names = {"A": "A cl-run protocol=online (ER, reservoir)",
             "B": "B scripts/reference_online.py",
             "C": "C Avalanche 0.6 (scripts/avalanche_online.py)"}
    rows = [[names[v], runs[v][0]["steps"], f"{med[v]:.0f}", f"{ev[v]:.0f}",
             f"{statistics.median(x['final_avg_acc'] for x in runs[v]):.4f}"
             + (" (partial stream)" if v == "C" and bench.args.avalanche_steps else ""),
             _load([x["load"] for x in runs[v]])] for v in variants]
    out = [("speed (median of rounds)", *table(
        ["variant", "steps", "steps/s", "eval samples/s", "final avg acc", "load (1 min)"],
        rows))]
    checks = [["A / B steps/s (paired per round, median)", f"{statistics.median(paired):.2f}",
               f">= {TARGETS['reference_ratio']}",
               _ok(statistics.median(paired) >= TARGETS["reference_ratio"])]]
    if have_ava:
        checks += [["A / C steps/s", f"{med['A'] / med['C']:.1f}",
                    f">= {TARGETS['avalanche_steps']}",
                    _ok(med["A"] / med["C"] >= TARGETS["avalanche_steps"])],
                   ["A / C evaluation samples/s", f"{ev['A'] / ev['C']:.1f}",
                    f">= {TARGETS['avalanche_eval']}",
                    _ok(ev["A"] / ev["C"] >= TARGETS["avalanche_eval"])]]
    out.append(("speed targets", *table(["measure", "value", "target", "met"], checks)))
    return out


def paired(rounds: int, threads: int, mirror: str, workdir: Path) -> list[tuple[str, str, str]]:
    """Reference step vs cl-run's training of a segment of chunks, alternating in-process."""
    sys.path.insert(0, str(HERE.parent))
    import torch
    import torch.nn.functional as F  # noqa: N812

    from cl_runner.benchmarks import SplitFMNIST, split_online_stream
    from cl_runner.buffers import ReservoirSamplingBuffer
    from cl_runner.evaluation.collectors import ExperienceStats
    from cl_runner.evaluation.plugin import EvaluationPlugin
    from cl_runner.models import SimpleMLP
    from cl_runner.run import StreamProgress
    from cl_runner.training import Replay, ReplayPlugin
    from cl_runner.training.guards import FiniteLossGuard

    torch.set_num_threads(threads)
    bench = SplitFMNIST(n_experiences=5, seed=0, root=str(workdir / "data"), mirror=mirror)
    stream = split_online_stream(bench.train_stream, 10, seed=0)
    data = bench.train_stream[0].dataset.storage_view().eval()
    x_all, y_all, _ = data.gather(torch.arange(len(data)))  # normalised once, as B does
    rows = torch.cat([stream[i].dataset.storage_indices for i in range(len(stream))])
    torch.manual_seed(0)
    model_b = SimpleMLP()
    opt_b = torch.optim.SGD(model_b.parameters(), lr=0.1)
    memory = [torch.empty(0, dtype=torch.long), torch.empty(0)]

    def reference(first: int, n: int) -> None:
        mem_rows, mem_keys = memory
        for i in range(first, first + n):
            chunk = rows[i * 10 : i * 10 + 10]
            idx = chunk[torch.randperm(len(chunk))]
            if len(mem_rows):
                idx = torch.cat([idx, mem_rows[torch.randperm(len(mem_rows))[:10]]])
            opt_b.zero_grad(set_to_none=True)
            F.cross_entropy(model_b(x_all[idx]), y_all[idx]).backward()
            opt_b.step()
            top = torch.topk(torch.cat([torch.rand(len(chunk)), mem_keys]),
                             min(1000, len(mem_keys) + len(chunk)))
            mem_rows, mem_keys = torch.cat([chunk, mem_rows])[top.indices], top.values
        memory[:] = [mem_rows, mem_keys]

    model_a = SimpleMLP()
    stats = ExperienceStats(10)
    stats.accumulate = True
    stats.start_period()
    progress = StreamProgress()
    progress.begin(0, len(stream))
    strategy = Replay(model_a, torch.optim.SGD(model_a.parameters(), lr=0.1), train_mb_size=10,
                      evaluator=EvaluationPlugin(), plugins=[stats, FiniteLossGuard(), progress],
                      replay_plugin=ReplayPlugin(1000, batch_size_mem=10,
                                                 storage_policy=ReservoirSamplingBuffer(1000)))
    n, speeds = 500, []
    for r in range(min(rounds, len(stream) // n)):
        t0 = time.perf_counter()
        reference(r * n, n)
        b = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        strategy.train(map(stream.__getitem__, range(r * n, r * n + n)))
        a = n / (time.perf_counter() - t0)
        speeds.append((a, b, load()))
    progress.close()
    ratio = statistics.median(a / b for a, b, _ in speeds)
    body = [[i, f"{a:.0f}", f"{b:.0f}", f"{a / b:.2f}", f"{ld:.1f}"]
            for i, (a, b, ld) in enumerate(speeds)]
    body.append(["median", f"{statistics.median(a for a, _, _ in speeds):.0f}",
                 f"{statistics.median(b for _, b, _ in speeds):.0f}", f"{ratio:.2f}",
                 f"target >= {TARGETS['reference_ratio']}: "
                 f"{_ok(ratio >= TARGETS['reference_ratio'])}"])
    return [("A/B paired in one process (segments of 500 chunks, ER online)", *table(
        ["segment", "A cl-run steps/s", "B reference steps/s", "A/B", "load (1 min)"], body))]


def _ok(flag: bool) -> str:
    return "yes" if flag else "NO"


def accuracy(bench: Bench, have_ava: bool) -> list[tuple[str, str, str]]:
    rows, results = [], Path(bench.args.avalanche_results)
    for method in bench.args.strategies:
        ours, theirs, notes = [], [], []
        ava_method = method.removesuffix("_bugs")
        for seed in bench.args.seeds:
            ours.append(bench.cl_run(method, seed))
            path = results / f"online_{ava_method}_s{seed}.json"
            ava = json.loads(path.read_text()) if path.exists() else None
            if ava is None and have_ava:
                ava = bench.avalanche(ava_method, seed, None)
            if ava_method == "gss_greedy" and (ava is None or ava.get("error")):
                if ava is not None:
                    notes.append(f"s{seed}: Avalanche as is fails ({ava['error']}); "
                                 "compared with one fix (GSS_FIX)")
                fixed = Path(bench.args.avalanche_fixed_results) / f"ava_gss_fixed_s{seed}.json"
                ava = json.loads(fixed.read_text()) if fixed.exists() else (
                    bench.avalanche(ava_method, seed, None, fixed=True) if have_ava else None)
            if ava is None:
                notes.append(f"s{seed}: no Avalanche result")
            elif ava.get("error"):
                notes.append(f"s{seed}: Avalanche failed ({ava['error']})")
            else:
                theirs.append(ava["final_avg_acc"])
            print(f"{method} s{seed}: cl-run {ours[-1]['final_avg_acc']:.4f} "
                  f"({ours[-1]['steps_per_s']:.0f} steps/s)"
                  + (f", Avalanche {ava['final_avg_acc']:.4f}" if ava and not ava.get("error")
                     else ""), flush=True)
        acc = [o["final_avg_acc"] for o in ours]
        mean = statistics.fmean(acc)
        other = statistics.fmean(theirs) if theirs else None
        diff = None if other is None else 100 * (mean - other)
        rows.append([method, len(acc), f"{mean:.4f} ± {statistics.pstdev(acc):.4f}",
                     "-" if other is None else f"{other:.4f} ± {statistics.pstdev(theirs):.4f}"
                     + (f" ({len(theirs)} seeds)" if len(theirs) != len(acc) else ""),
                     "-" if diff is None else f"{diff:+.1f}",
                     "-" if diff is None else _ok(abs(diff) <= TARGETS["acc_points"]),
                     f"{statistics.median(o['steps_per_s'] for o in ours):.0f}",
                     "; ".join(notes)])
    return [("final average accuracy, cl-run vs Avalanche 0.6", *table(
        ["method", "seeds", "cl-run", "Avalanche", "diff (points)", "within 2", "cl-run steps/s",
         "notes"], rows))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed-rounds", type=int, default=3, help="0: skip the speed part")
    parser.add_argument("--paired-rounds", type=int, default=12,
                        help="segments of the in-process A/B comparison (0: skip it)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2],
                        help="accuracy seeds (none: skip the accuracy part)")
    parser.add_argument("--strategies", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mirror", default=MIRROR)
    parser.add_argument("--avalanche-python", default="/tmp/ava/bin/python")
    parser.add_argument("--avalanche-steps", type=int, default=1500,
                        help="Avalanche's speed run trains this many steps")
    parser.add_argument("--avalanche-results", default="/tmp/ava_results")
    parser.add_argument("--avalanche-fixed-results", default="/tmp/online_work",
                        help="where ava_gss_fixed_s<seed>.json (Avalanche GSS + GSS_FIX) are")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    bench = Bench(args)
    have_ava = avalanche_available(args.avalanche_python)
    if not have_ava:
        print(f"Avalanche not importable with {args.avalanche_python}: its columns are skipped "
              "(python -m venv /tmp/ava && /tmp/ava/bin/pip install avalanche-lib)")
    started = datetime.datetime.now(datetime.timezone.utc)
    header = (f"{started:%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
              f"torch threads {args.threads}, load before {load():.1f}; "
              f"command: python scripts/bench_online.py {' '.join(sys.argv[1:])}")
    print(header, flush=True)
    sections = []
    if args.paired_rounds:
        sections += paired(args.paired_rounds, args.threads, args.mirror, bench.work)
    if args.speed_rounds:
        sections += speed(bench, have_ava)
    if args.seeds:
        sections += accuracy(bench, have_ava)
    for title, text, _ in sections:
        print(f"\n{title}\n{text}")
    print("\n" + header)
    for title, _, md in sections:
        print(f"\n**{title}**\n\n{md}")


if __name__ == "__main__":
    main()
