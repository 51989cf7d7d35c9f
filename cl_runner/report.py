"""`cl-report`: a sweep's results per buffer setting, mean ± std over seeds.

Reads FINISHED runs back from MLflow (not from job folders), so it reports exactly what the
MLflow UI shows. Runs are grouped by every buffer param but the seed; the final value of a
metric is MLflow's latest value, i.e. the one at the highest step (the last experience).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from cl_runner.tracking.store import resolve_tracking_uri

GROUP_PARAMS = ("buffer._target_", "buffer.groupby", "selection._target_", "buffer.max_size")
ACCURACY, FORGETTING = "accuracy/average_seen", "forgetting/average"
COLUMNS = ["buffer", "groupby", "selection", "max_size", "n_seeds",
           "accuracy_mean", "accuracy_std", "forgetting_mean", "forgetting_std"]
CSV_FILE, PNG_FILE = "report.csv", "accuracy_vs_buffer_size.png"


def _short(target: str) -> str:
    """``cl_runner.buffers.ParametricBuffer`` -> ``Parametric``; None -> none."""
    if target in ("", "None"):
        return "none"
    return target.rsplit(".", 1)[-1].removesuffix("Buffer").removesuffix("SelectionStrategy")


def finished_runs(uri: str, experiment: str, query: str) -> list[Any]:
    """Every FINISHED run of ``experiment`` matching the MLflow filter ``query``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"cl-report: error: no experiment {experiment!r} at {uri}")
    query = " and ".join(q for q in ("attributes.status = 'FINISHED'", query) if q)
    runs, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], query, page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


def summarize(runs: list[Any]) -> list[dict[str, Any]]:
    """One row per buffer setting: seeds, and mean/std (n-1; 0 for one seed) of the metrics."""
    groups: dict[tuple[str, ...], list[Any]] = defaultdict(list)
    for run in runs:
        groups[tuple(run.data.params.get(p, "") for p in GROUP_PARAMS)].append(run)
    rows = []
    for (buffer, groupby, selection, size), members in groups.items():
        row: dict[str, Any] = {"buffer": _short(buffer), "groupby": groupby,
                               "selection": _short(selection), "max_size": int(size or 0),
                               "n_seeds": len(members)}
        for name, key in (("accuracy", ACCURACY), ("forgetting", FORGETTING)):
            values = [r.data.metrics[key] for r in members if key in r.data.metrics]
            row[f"{name}_mean"] = statistics.fmean(values) if values else float("nan")
            row[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(row)
    return sorted(rows, key=lambda r: (r["buffer"], r["groupby"], r["selection"], r["max_size"]))


def write_outputs(rows: list[dict[str, Any]], out: Path) -> None:
    """``report.csv`` and the accuracy-vs-buffer-size chart, one line per buffer type."""
    from cl_runner.plots import accuracy_vs_size_png

    out.mkdir(parents=True, exist_ok=True)
    with open(out / CSV_FILE, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for r in rows:
        label = " ".join(v for v in (r["buffer"], r["groupby"], r["selection"]) if v)
        lines[label].append((r["max_size"], r["accuracy_mean"], r["accuracy_std"]))
    accuracy_vs_size_png(lines, out / PNG_FILE)


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption="final values, mean ± std over seeds",
                  box=box.SIMPLE_HEAD)
    for col in ("buffer", "groupby", "selection"):
        table.add_column(col)
    for col in ("max size", "seeds", "accuracy", "forgetting"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            r["buffer"], r["groupby"], r["selection"], str(r["max_size"]), str(r["n_seeds"]),
            f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f}",
            f"{r['forgetting_mean']:.3f} ± {r['forgetting_std']:.3f}",
        )
    Console().print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cl-report", description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else the "
                        "sqlite store under --output-root (as cl-run)")
    parser.add_argument("--output-root", default=os.environ.get("CL_RUNNER_OUTPUT_ROOT",
                                                                "outputs"),
                        help="cl-run's paths.output_root (default: $CL_RUNNER_OUTPUT_ROOT "
                        "or ./outputs)")
    parser.add_argument("--experiment", default="cl_runner", help="MLflow experiment name")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--sweep", help="value of the runs' `sweep` tag (the Hydra sweep dir)")
    which.add_argument("--filter", default="", help="an MLflow filter string, e.g. "
                       "\"params.benchmark._target_ LIKE '%%Digits'\"")
    parser.add_argument("--out", type=Path, default=Path("report"),
                        help=f"folder for {CSV_FILE} and {PNG_FILE} (default: ./report)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = parse_args(argv)
    uri = resolve_tracking_uri(args.tracking_uri, args.output_root)
    query = f"tags.sweep = '{args.sweep}'" if args.sweep else args.filter
    runs = finished_runs(uri, args.experiment, query)
    if not runs:
        raise SystemExit(f"cl-report: error: no FINISHED runs in {args.experiment!r} at {uri}"
                         + (f" matching {query}" if query else ""))
    rows = summarize(runs)
    print_table(rows, f"{len(runs)} runs of {args.experiment}" + (f" ({query})" if query else ""))
    write_outputs(rows, args.out)
    print(f"wrote {args.out / CSV_FILE} and {args.out / PNG_FILE}")


if __name__ == "__main__":
    main()
