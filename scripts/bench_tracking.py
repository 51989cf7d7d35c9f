"""Benchmark: what MLflow tracking costs an online run that logs 1,000 evaluation points.

Experiment: ``cl-run protocol=online`` on Split Fashion-MNIST (full data, Debian mirror), the
online issue's settings (SimpleMLP, chunks of 10, SGD lr 0.1, a 1000-sample reservoir,
10 memory samples per step), with anytime evaluation every 60 training samples on a fixed
subsample of 1,000 test samples: 60,000 / 60 = 1,000 evaluation points, each one MLflow step
(plus the 5 experience lines).

Each round runs the same seed twice, each in its own process, alternating which goes first:
``tracking=none`` and ``tracking=mlflow`` (the default local sqlite store, written by the
background writer). Reported per tracked run: its wall time, the time it waited on the writer
at its end (``tracking_wait_s`` in ``run_info.json``) and that wait's share of the wall time,
and the points MLflow holds afterwards (read back with ``MlflowClient``: nothing lost, nothing
duplicated). Targets (the online issue): wait < 5% of wall time; every point in MLflow once.

    python scripts/bench_tracking.py [--rounds 3] [--seed 0] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import tempfile
from pathlib import Path

from bench_er import run_process  # scripts/ is on sys.path when a script in it runs
from bench_online import COMMON, METHODS, MIRROR, Bench
from bench_tables import table

POINTS_EVERY, SUBSAMPLE, N_POINTS = 60, 1000, 1000
TARGET_WAIT_SHARE = 0.05


def tracked_points(output_root: Path, run_id: str) -> tuple[int, int]:
    """(points, distinct steps) of ``anytime_eval/accuracy_seen`` in the run's MLflow store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{output_root / 'mlflow.db'}")
    history = client.get_metric_history(run_id, "anytime_eval/accuracy_seen")
    return len(history), len({m.step for m in history})


def run_once(bench: Bench, tracking: str, seed: int, mirror: str) -> dict:
    bench.count += 1
    out = bench.work / f"out-{tracking}"
    run_dir = bench.work / "runs" / f"{bench.count:03d}-{tracking}"
    log = bench.work / "logs" / f"{bench.count:03d}-{tracking}.log"
    common = [c for c in COMMON if not c.startswith("tracking=")]
    cmd = ["cl-run", *common, *METHODS["er"], f"seed={seed}", f"tracking={tracking}",
           f"protocol.eval_every={POINTS_EVERY}", f"protocol.eval_subsample={SUBSAMPLE}",
           f"benchmark.mirror={mirror}", f"paths.output_root={out}",
           f"paths.data_root={bench.work / 'data'}", f"hydra.run.dir={run_dir}"]
    run = run_process(cmd, bench.env, log)
    if run.returncode != 0:
        raise RuntimeError(f"exit code {run.returncode}, see {log}:\n{log.read_text()[-3000:]}")
    info = json.loads((run_dir / "run_info.json").read_text())
    result = {"wall_s": run.wall_s, "wait_s": info.get("tracking_wait_s", 0.0)}
    if tracking == "mlflow":
        tracking_state = json.loads((run_dir / "tracking.json").read_text())
        result["points"], result["steps"] = tracked_points(out, tracking_state["run_id"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mirror", default=MIRROR)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="bench_tracking_")
    bench = Bench(argparse.Namespace(workdir=args.workdir))
    print(f"workdir {bench.work}; warming up (decoding Fashion-MNIST into the tensor cache)",
          flush=True)
    run_once(bench, "none", args.seed, args.mirror)
    results: dict[str, list[dict]] = {"none": [], "mlflow": []}
    for r in range(args.rounds):
        for tracking in (("none", "mlflow") if r % 2 == 0 else ("mlflow", "none")):
            results[tracking].append(run_once(bench, tracking, args.seed, args.mirror))
            print(f"round {r} {tracking}: {results[tracking][-1]}", flush=True)
    tracked, plain = results["mlflow"], results["none"]
    share = statistics.median(t["wait_s"] / t["wall_s"] for t in tracked)
    complete = all(t["points"] == t["steps"] == N_POINTS for t in tracked)
    rows = [
        ["tracking=none", f"{statistics.median(p['wall_s'] for p in plain):.2f}", "", "", ""],
        ["tracking=mlflow", f"{statistics.median(t['wall_s'] for t in tracked):.2f}",
         f"{statistics.median(t['wait_s'] for t in tracked):.3f}", f"{100 * share:.2f}%",
         " / ".join(f"{t['points']}" for t in tracked)],
    ]
    text, md = table(["variant", "wall s", "wait on tracking s", "wait / wall",
                      "MLflow points per run"], rows)
    verdict = (f"wait share {100 * share:.2f}% (target < {100 * TARGET_WAIT_SHARE:.0f}%): "
               f"{'met' if share < TARGET_WAIT_SHARE else 'NOT met'}; every run has its "
               f"{N_POINTS} points once: {'yes' if complete else 'NO'}")
    stamp = f"{datetime.date.today()} {platform.processor() or platform.machine()}"
    print(f"\nMedians of {args.rounds} rounds, seed {args.seed}, {stamp}")
    print(f"{text}\n{verdict}\n\n{md}")


if __name__ == "__main__":
    main()
