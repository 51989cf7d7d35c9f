"""Benchmark: every rehearsal method of cl_runner against Avalanche 0.6, same experiment.

Experiment (the replay-family issue's): Split Fashion-MNIST (full data, Debian mirror),
class-incremental, 5 experiences of 2 classes, class order for seed s =
``torch.randperm(10, generator=torch.Generator().manual_seed(s))``; SimpleMLP (512 hidden,
dropout 0.5), Adam 1e-3, 1 epoch, train_mb_size 100, eval_mb_size 256, memory 500, each
method's default (Avalanche's) hyper-parameters; evaluation on the whole test stream after
each experience; final average accuracy = mean accuracy over the 5 test experiences after the
last one. Task-incremental rows (``*_ti``: task labels, one head per task) are there for A-GEM,
whose class-incremental runs are unstable in Avalanche.

- ours: one process per method and seed (this script with ``--worker``), built from the
  ``cl-run`` config (``tracking=none``) and timed exactly like the Avalanche script: wall
  clock of ``strategy.train(exp)`` and ``strategy.eval(test_stream)``, summed.
- Avalanche: ``scripts/avalanche_strategies.py`` under ``--avalanche-python`` (a virtualenv
  with Avalanche 0.6; it is not a dependency), one process per method and seed, or the
  ``RESULT`` JSON files it wrote before (``--avalanche-results DIR``, files
  ``offline_<method>_s<seed>.json``). Without either, the Avalanche columns are skipped.

Rounds alternate the two sides, so machine load hits both alike.

    python scripts/bench_strategies.py [--methods er_ace der ...] [--seeds 0 1 2] \\
        [--avalanche-python /tmp/ava/bin/python] [--avalanche-results DIR] \\
        [--threads N] [--device cuda] [--workdir DIR]

Prints a plain table, then the same as Markdown (for the README); ``results.json`` in the
work folder holds every run.
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
REPO = HERE.parent
MIRROR = "/usr/share/datasets/fashion-mnist"
TARGET_POINTS = 2.0  # |ours - Avalanche| in points of final average accuracy (mean of seeds)
TARGET_SPEEDUP = 5.0  # Avalanche's train+eval time / ours

TASK_INCREMENTAL = ("benchmark.return_task_id=true", "model=multihead_mlp")
# method -> (cl-run overrides, Avalanche script arguments, note)
METHODS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "naive": (("strategy=naive",), ("--strategy", "naive"), "lower bound"),
    "replay": (("strategy=replay", "buffer=experience_balanced"), ("--strategy", "replay"),
               "Avalanche's Replay: experience-balanced memory"),
    "er_ace": (("strategy=er_ace",), ("--strategy", "er_ace"), ""),
    "der": (("strategy=der",), ("--strategy", "der"), "beta=0"),
    "derpp": (("strategy=derpp",), ("--strategy", "derpp"), ""),
    "gdumb": (("strategy=gdumb",), ("--strategy", "gdumb"), ""),
    "icarl": (("strategy=icarl",), ("--strategy", "icarl"), ""),
    "bic": (("strategy=bic",), ("--strategy", "bic"),
            "Avalanche's BiC fails on this torch (bias-correction stage)"),
    # Avalanche's A-GEM memory: patterns_per_exp = 500 // 5 samples of every experience
    "agem": (("strategy=agem", "buffer.adaptive_size=false", "buffer.num_experiences=5"),
             ("--strategy", "agem"), "class-incremental A-GEM is unstable in Avalanche"),
    "naive_ti": (("strategy=naive", *TASK_INCREMENTAL), ("--strategy", "naive",
                                                         "--task-incremental"),
                 "task-incremental lower bound"),
    "agem_ti": (("strategy=agem", "buffer.adaptive_size=false", "buffer.num_experiences=5",
                 *TASK_INCREMENTAL), ("--strategy", "agem", "--task-incremental"),
                "task-incremental: the A-GEM comparison"),
}
NO_MEMORY = ("naive", "naive_ti")
# rows whose Avalanche result is not a reference for the agreement target
NOT_COMPARED = {"agem": "unstable in Avalanche (compare agem_ti)", "naive": "", "naive_ti": ""}


def overrides(method: str, seed: int, args: argparse.Namespace, work: Path) -> list[str]:
    """The ``cl-run`` command line of one of our runs."""
    own, _, _ = METHODS[method]
    memory = [] if method in NO_MEMORY else ["buffer.max_size=500"]
    return [
        "benchmark=split_fmnist", f"benchmark.mirror={args.mirror}", *own, *memory,
        "strategy.train_mb_size=100", "strategy.train_epochs=1", "strategy.eval_mb_size=256",
        "model.hidden_size=512", "model.drop_rate=0.5", "optimizer=adam", "optimizer.lr=0.001",
        f"seed={seed}", f"device={args.device}", "tracking=none",
        f"paths.output_root={work / 'out'}", f"paths.data_root={work / 'data'}",
    ]


def worker(method: str, seed: int, args: argparse.Namespace, work: Path) -> None:
    """One of our runs, timed as the Avalanche script times its runs; prints ``RESULT``."""
    import torch
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from cl_runner.config.schema import register
    from cl_runner.config.validate import validate
    from cl_runner.experiment import build

    if args.threads:
        torch.set_num_threads(args.threads)
    register()
    GlobalHydra.instance().clear()
    cmd = overrides(method, seed, args, work)
    with initialize_config_module("cl_runner.conf", version_base="1.3"):
        cfg = compose("config", overrides=cmd)
    validate(cfg, cmd)
    parts = build(cfg)
    bench, strategy = parts.benchmark, parts.strategy
    train_s = eval_s = 0.0
    matrix = []
    for exp in bench.train_stream:
        t0 = time.perf_counter()
        strategy.train(exp)
        if strategy.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        strategy.eval(bench.test_stream)
        t2 = time.perf_counter()
        train_s, eval_s = train_s + t1 - t0, eval_s + t2 - t1
        row = [parts.stats.accuracies[j] for j in range(bench.n_experiences)]
        matrix.append(row)
        print(f"exp {exp.current_experience}: train {t1 - t0:6.2f}s eval {t2 - t1:6.2f}s acc "
              + " ".join(f"{a:.4f}" for a in row), flush=True)
    result = {"strategy": method, "seed": seed, "acc_matrix": matrix,
              "final_avg_acc": sum(matrix[-1]) / len(matrix[-1]), "train_s": train_s,
              "eval_s": eval_s, "torch_threads": torch.get_num_threads(),
              "overrides": cmd, "error": None}
    print("RESULT " + json.dumps(result), flush=True)


def run(cmd: list[str], log: Path, env: dict[str, str]) -> dict:
    """Run one process to completion; its RESULT (or an error record)."""
    with open(log, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    return result_line(log, f" from {' '.join(cmd)} (exit {proc.returncode})")


def avalanche_available(python: str | None) -> bool:
    if not python:
        return False
    probe = subprocess.run([python, "-c", "import avalanche"], capture_output=True)
    return probe.returncode == 0


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summary_rows(
    methods: list[str], ours: dict[str, list[dict]], theirs: dict[str, list[dict]],
) -> list[list[str]]:
    rows = []
    for method in methods:
        mine = ours.get(method, [])
        acc, sd = mean_std([r["final_avg_acc"] for r in mine])
        t_ours = statistics.mean([r["train_s"] + r["eval_s"] for r in mine]) if mine else None
        other = [r for r in theirs.get(method, []) if r.get("final_avg_acc") is not None]
        failed = [r for r in theirs.get(method, []) if r.get("final_avg_acc") is None]
        if other:
            ava, ava_sd = mean_std([r["final_avg_acc"] for r in other])
            t_ava = statistics.mean([r["train_s"] + r["eval_s"] for r in other])
            ava_cell = f"{100 * ava:.2f} ± {100 * ava_sd:.2f}"
            diff = f"{100 * (acc - ava):+.2f}"
            t_ava_cell = f"{t_ava:.1f}"
            ratio = f"{t_ava / t_ours:.1f}x" if t_ours else "-"
        else:
            ava_cell = "fails" if failed else "-"
            diff = t_ava_cell = ratio = "-"
        rows.append([method, f"{100 * acc:.2f} ± {100 * sd:.2f}", ava_cell, diff,
                     f"{t_ours:.1f}" if t_ours is not None else "-", t_ava_cell, ratio,
                     " ".join(f"{100 * r['final_avg_acc']:.1f}" for r in mine)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--avalanche-python", default=None,
                        help="Python of a virtualenv with Avalanche 0.6 (else Avalanche's side "
                             "is skipped, unless --avalanche-results has it)")
    parser.add_argument("--avalanche-results", default=None, metavar="DIR",
                        help="reuse Avalanche RESULT files DIR/offline_<method>_s<seed>.json")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch/OMP threads of every process (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mirror", default=MIRROR)
    parser.add_argument("--workdir", default=None, help="default: a new temporary folder")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_strategies_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args, work)
        return

    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    if args.threads:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(args.threads)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    cached = Path(args.avalanche_results) if args.avalanche_results else None
    run_avalanche = avalanche_available(args.avalanche_python)
    if not run_avalanche and cached is None:
        print(f"Avalanche's side skipped: no --avalanche-python that can import avalanche "
              f"({args.avalanche_python}) and no --avalanche-results", flush=True)

    def ours_cmd(method: str, seed: int) -> list[str]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method, str(seed),
               "--workdir", str(work), "--device", args.device, "--mirror", args.mirror]
        return cmd + (["--threads", str(args.threads)] if args.threads else [])

    def theirs_cmd(method: str, seed: int) -> list[str]:
        cmd = [args.avalanche_python, str(HERE / "avalanche_strategies.py"),
               *METHODS[method][1], "--seed", str(seed), "--device", args.device]
        return cmd + (["--threads", str(args.threads)] if args.threads else [])

    print(f"workdir {work}; warming up (decoding Fashion-MNIST into the tensor cache)",
          flush=True)
    run(ours_cmd("naive", args.seeds[0]), logs / "warmup.log", env)
    load_before = os.getloadavg()
    ours: dict[str, list[dict]] = {}
    theirs: dict[str, list[dict]] = {}
    for k, (method, seed) in enumerate((m, s) for s in args.seeds for m in args.methods):
        sides = ["ours", "avalanche"] if k % 2 == 0 else ["avalanche", "ours"]
        for side in sides:
            if side == "ours":
                result = run(ours_cmd(method, seed), logs / f"ours_{method}_s{seed}.log", env)
                ours.setdefault(method, []).append(result)
                print(f"ours      {method:9s} seed {seed}: acc {result['final_avg_acc']:.4f} "
                      f"train {result['train_s']:6.1f}s eval {result['eval_s']:5.1f}s", flush=True)
                continue
            name = f"offline_{method}_s{seed}.json"
            result = None
            if cached is not None and (cached / name).is_file():
                result = json.loads((cached / name).read_text())
                result["cached"] = str(cached / name)
            elif run_avalanche:
                result = run(theirs_cmd(method, seed), logs / f"avalanche_{method}_s{seed}.log",
                             env)
                (work / name).write_text(json.dumps(result))
            if result is None:
                continue
            theirs.setdefault(method, []).append(result)
            acc = result.get("final_avg_acc")
            shown = f"{acc:.4f}" if acc is not None else f"failed ({result.get('error')})"
            print(f"avalanche {method:9s} seed {seed}: acc {shown} train "
                  f"{result['train_s']:6.1f}s eval {result['eval_s']:5.1f}s"
                  + (" (cached)" if "cached" in result else ""), flush=True)
    load_after = os.getloadavg()

    headers = ["method", "ours acc % (mean ± sd)", "Avalanche acc %", "diff (points)",
               "ours train+eval s", "Avalanche train+eval s", "speed-up", "ours per seed"]
    rows = summary_rows(args.methods, ours, theirs)
    text, md = table(headers, rows)
    checks = []
    for method, row in zip(args.methods, rows, strict=True):
        if row[3] == "-" or method in NOT_COMPARED:
            continue
        diff, ratio = abs(float(row[3])), float(row[6].rstrip("x"))
        checks.append(f"{method}: |diff| {diff:.2f} <= {TARGET_POINTS} "
                      f"{'ok' if diff <= TARGET_POINTS else 'MISSED'}; speed-up {ratio:.1f}x >= "
                      f"{TARGET_SPEEDUP} {'ok' if ratio >= TARGET_SPEEDUP else 'MISSED'}")
    notes = [f"{m}: {METHODS[m][2]}" for m in args.methods if METHODS[m][2]]
    machine = (f"{platform.machine()} {os.cpu_count()} CPUs, load average "
               f"{load_before[0]:.1f} -> {load_after[0]:.1f}; seeds {args.seeds}; "
               f"device {args.device}; threads {args.threads or 'torch default'}; "
               f"{datetime.datetime.now().isoformat(timespec='minutes')}")
    print("\n" + text + "\n\n" + "\n".join(checks) + "\n\n" + "\n".join(notes) + "\n"
          + machine + "\n\nMarkdown:\n\n" + md + "\n")
    (work / "results.json").write_text(json.dumps(
        {"ours": ours, "avalanche": theirs, "rows": rows, "headers": headers,
         "machine": machine, "argv": sys.argv}, indent=1))


if __name__ == "__main__":
    main()
