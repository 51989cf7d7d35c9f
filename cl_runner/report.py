"""`cl-report`: a sweep's results per configuration, mean ± std over distinct seeds.

Reads FINISHED runs back from MLflow (not from job folders), so it reports exactly what the
MLflow UI shows. The final value of a metric is MLflow's latest value, i.e. the one at the
highest step (the last experience).

Grouping rules:

- a run's *configuration* is every param but its seeds (``seed`` and ``*.seed``) and the
  settings that do not change what is computed: ``paths.*``, ``tracking.*``, ``hydra.*``,
  ``name``, ``resume``, ``resume_allow_changes``, ``device`` and where data are read from
  (``*.root``, ``*.mirror``, ``*.download``, ``*.verify_checksums``). So the method
  (``strategy._target_`` and its hyper-parameters), the buffer, the selection, the loader,
  the optimizer, the benchmark and the training sizes all tell rows apart;
- one row per configuration; its ``seeds`` are the *distinct* seeds among its runs. Runs with
  the same configuration and seed (a sweep run twice, a run repeated by hand) are duplicates:
  the newest is reported and the others are counted in ``duplicates`` and listed on stderr;
- the table shows the method, the buffer (as run names spell it), its size, and every other
  setting that differs between the rows.

``--sweep PATH`` selects the runs tagged with that sweep folder (a relative path is resolved
as cl-run resolved it) and the runs that an earlier sweep made and this one continued or found
finished (``resume=true``): those carry the newest sweep in their ``sweep`` tag and the one
before in ``sweep.previous``, so both folders select them.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cl_runner.tracking.store import resolve_tracking_uri

ACCURACY, FORGETTING, BYTES = "accuracy/average_seen", "forgetting/average", "buffer/bytes"
EXTRA_PREFIX = "anytime/"  # online-protocol summaries (anytime/aaa, worst-case accuracy, ...)
CSV_FILE = "report.csv"
PNG_FILES = {"size": "accuracy_vs_buffer_size.png", "bytes": "accuracy_vs_buffer_bytes.png"}
X_LABELS = {"size": "buffer size (buffer.max_size, samples)",
            "bytes": "buffer memory (buffer/bytes after the last experience)"}

IGNORED_KEYS = {"name", "resume", "resume_allow_changes", "device"}
IGNORED_PREFIXES = ("paths.", "tracking.", "hydra.")
IGNORED_SUFFIXES = (".root", ".mirror", ".download", ".verify_checksums")
# Shown in their own columns (method, buffer, max size) rather than as "other settings".
LABELLED_KEYS = {"strategy._target_", "buffer._target_", "buffer.groupby",
                 "selection._target_", "buffer.max_size"}


def is_seed(key: str) -> bool:
    return key == "seed" or key.endswith(".seed")


def in_config(key: str) -> bool:
    """Whether param ``key`` is part of a run's configuration (see the grouping rules)."""
    return not (is_seed(key) or key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES)
                or key.endswith(IGNORED_SUFFIXES))


def _target_name(target: str) -> str:
    """``cl_runner.buffers.ParametricBuffer`` -> ``ParametricBuffer``; empty for none."""
    return "" if target in ("", "None") else target.rsplit(".", 1)[-1]


def _declared(target: str) -> Any | None:
    """The class a ``_target_`` param names, if it can still be imported (torch-free)."""
    if target in ("", "None"):
        return None
    try:
        from hydra.utils import get_object

        return get_object(target)
    except Exception:
        return None


def _group_args(params: Mapping[str, str], group: str) -> dict[str, Any]:
    """A group's settings from flat params, values read back as YAML scalars."""
    import yaml

    prefix = group + "."
    args = {}
    for key, value in params.items():
        if key.startswith(prefix) and "." not in key[len(prefix):] and not key.endswith("_"):
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                parsed = value
            args[key[len(prefix):]] = None if parsed == "None" else parsed  # MLflow's None
    return args


def method_label(params: Mapping[str, str]) -> str:
    """The method as run names spell it (``replay``, ``naive``, ``derpp``)."""
    target = params.get("strategy._target_", "")
    cls = _declared(target)
    short = getattr(cls, "short_name", None)
    return short or _target_name(target).lower() or "?"


def buffer_label(params: Mapping[str, str]) -> str:
    """The buffer as run names spell it (``parametric-class-herding``, ``reservoir``, ``none``)."""
    target = params.get("buffer._target_", "")
    if target in ("", "None"):
        return "none"
    cls = _declared(target)
    try:
        parts = list(cls.name_parts(_group_args(params, "buffer")))
    except Exception:
        parts = [_target_name(target).removesuffix("Buffer").lower()]
        if params.get("buffer.groupby") not in (None, ""):
            parts.append(str(params["buffer.groupby"]))
    if cls is None or getattr(cls, "takes_selection", False):
        selection = _declared(params.get("selection._target_", ""))
        parts.append(getattr(selection, "name_part", None) or "")
    return "-".join(p for p in parts if p)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class RunRecord:
    """What the report needs from one MLflow run."""

    run_id: str
    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    start_time: int = 0

    @property
    def config(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((k, v) for k, v in self.params.items() if in_config(k)))

    @property
    def seed(self) -> str:
        seeds = sorted((k, v) for k, v in self.params.items() if is_seed(k))
        values = {v for _, v in seeds}
        if len(values) <= 1:
            return next(iter(values), "")
        return ",".join(f"{k}={v}" for k, v in seeds)

    @classmethod
    def from_mlflow(cls, run: Any) -> RunRecord:
        return cls(run.info.run_id, run.info.run_name or run.info.run_id,
                   dict(run.data.params), dict(run.data.metrics), run.info.start_time or 0)


@dataclass
class Row:
    """One configuration: its runs (one per distinct seed) and the duplicates left out."""

    config: dict[str, str]
    runs: list[RunRecord]
    duplicates: list[RunRecord] = field(default_factory=list)

    @property
    def method(self) -> str:
        return method_label(self.config)

    @property
    def buffer(self) -> str:
        return buffer_label(self.config)

    @property
    def max_size(self) -> int | None:
        value = _number(self.config.get("buffer.max_size"))
        return int(value) if value is not None else None

    @property
    def has_memory(self) -> bool:
        return self.buffer != "none" and bool(self.max_size)

    def values(self, key: str) -> list[float]:
        return [r.metrics[key] for r in self.runs if key in r.metrics]

    def mean_std(self, key: str) -> tuple[float, float]:
        """Mean and sample std (n-1; 0 for one seed) over the seeds; NaN when none has it."""
        values = self.values(key)
        if not values:
            return math.nan, math.nan
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def finished_runs(uri: str, experiment: str, queries: Sequence[str]) -> list[Any]:
    """Every FINISHED run of ``experiment`` matching any of the MLflow filters ``queries``
    (each ANDed with the status), each once."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"cl-report: error: no experiment {experiment!r} at {uri}")
    found: dict[str, Any] = {}
    for query in queries or [""]:
        full = " and ".join(q for q in ("attributes.status = 'FINISHED'", query) if q)
        token = None
        while True:
            page = client.search_runs([exp.experiment_id], full, page_token=token)
            found.update((run.info.run_id, run) for run in page)
            token = page.token
            if not token:
                break
    return list(found.values())


def summarize(runs: Iterable[RunRecord]) -> list[Row]:
    """One row per configuration; per seed the newest run, older ones as duplicates."""
    by_config: dict[tuple, dict[str, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_config[run.config][run.seed].append(run)
    rows = []
    for config, by_seed in by_config.items():
        row = Row(dict(config), [])
        for seed in sorted(by_seed, key=_seed_order):
            newest, *older = sorted(by_seed[seed], key=lambda r: r.start_time, reverse=True)
            row.runs.append(newest)
            row.duplicates += older
        rows.append(row)
    varying = varying_keys(rows)
    return sorted(rows, key=lambda r: (r.method, r.buffer,
                                       [_sort_value(r.config.get(k, "")) for k in varying],
                                       r.max_size or 0))


def _seed_order(seed: str) -> tuple[int, float, str]:
    number = _number(seed)
    return (0, number, "") if number is not None else (1, 0.0, seed)


def _sort_value(value: str) -> tuple[int, float, str]:
    number = _number(value)
    return (0, number, "") if number is not None else (1, 0.0, value)


def varying_keys(rows: Sequence[Row]) -> list[str]:
    """Configuration keys (besides method, buffer and size) whose values differ between rows."""
    keys = sorted({k for row in rows for k in row.config} - LABELLED_KEYS)
    return [k for k in keys if len({row.config.get(k, "") for row in rows}) > 1]


def extra_metrics(rows: Sequence[Row]) -> list[str]:
    """Summary metrics some runs log besides accuracy and forgetting (``anytime/aaa``, the
    worst-case accuracy, ...): reported when present."""
    found = {k for row in rows for r in row.runs for k in r.metrics if k.startswith(EXTRA_PREFIX)}
    return sorted(found, key=lambda k: (k != "anytime/aaa", k))


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Column titles: the last part of each key, the full key where two would be equal."""
    leaves = [k.rsplit(".", 1)[-1] for k in keys]
    titles = {}
    for key, leaf in zip(keys, leaves, strict=True):
        title = leaf if leaves.count(leaf) == 1 and leaf != "_target_" else key
        titles[key] = title.removesuffix("._target_")
    return titles


def display_value(value: str) -> str:
    """A param value for the table: class paths shortened to the class name."""
    if "." in value and value.rsplit(".", 1)[-1][:1].isupper() and " " not in value:
        return value.rsplit(".", 1)[-1]
    return value


def _metric_name(key: str) -> str:
    return key.split("/", 1)[-1]


def table_rows(rows: Sequence[Row]) -> tuple[list[str], list[dict[str, Any]]]:
    """The CSV's columns and rows."""
    varying, extras = varying_keys(rows), extra_metrics(rows)
    columns = ["method", "buffer", "max_size", *varying, "n_seeds", "seeds", "n_runs",
               "duplicates", "accuracy_mean", "accuracy_std", "forgetting_mean",
               "forgetting_std", "buffer_bytes"]
    for key in extras:
        columns += [f"{_metric_name(key)}_mean", f"{_metric_name(key)}_std"]
    columns.append("run_ids")
    out = []
    for row in rows:
        record: dict[str, Any] = {"method": row.method, "buffer": row.buffer,
                                  "max_size": row.max_size if row.max_size is not None else ""}
        record.update({k: row.config.get(k, "") for k in varying})
        record.update(n_seeds=len(row.runs), seeds=" ".join(r.seed for r in row.runs),
                      n_runs=len(row.runs) + len(row.duplicates),
                      duplicates=len(row.duplicates))
        for name, key in (("accuracy", ACCURACY), ("forgetting", FORGETTING),
                          *((_metric_name(k), k) for k in extras)):
            record[f"{name}_mean"], record[f"{name}_std"] = row.mean_std(key)
        record["buffer_bytes"] = row.mean_std(BYTES)[0]
        record["run_ids"] = " ".join(r.run_id for r in row.runs)
        out.append(record)
    return columns, out


def write_csv(rows: Sequence[Row], path: Path) -> None:
    columns, records = table_rows(rows)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)


def plot_lines(rows: Sequence[Row], x: str) -> tuple[dict[str, list], dict[str, tuple]]:
    """Points (x, mean, std) per line (method, buffer and every other differing setting but
    the size) and the rows without memory (drawn as horizontal baselines)."""
    varying = [k for k in varying_keys(rows)]
    titles = short_keys(varying)
    lines: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    baselines: dict[str, tuple[float, float]] = {}
    for row in rows:
        extra = " ".join(f"{titles[k]}={display_value(row.config.get(k, ''))}" for k in varying)
        label = " ".join(p for p in (row.method, row.buffer, extra) if p)
        mean, std = row.mean_std(ACCURACY)
        if math.isnan(mean):
            continue
        if not row.has_memory:
            baselines[" ".join(p for p in (row.method, extra) if p)] = (mean, std)
            continue
        position = row.max_size if x == "size" else row.mean_std(BYTES)[0]
        if position is not None and not math.isnan(position):
            lines[label].append((float(position), mean, std))
    return dict(lines), baselines


def write_plot(rows: Sequence[Row], out: Path, x: str, log_x: bool) -> Path:
    from cl_runner.plots import accuracy_vs_memory_png

    lines, baselines = plot_lines(rows, x)
    return accuracy_vs_memory_png(lines, out / PNG_FILES[x], x_label=X_LABELS[x],
                                  baselines=baselines, log_x=log_x,
                                  x_format=_bytes if x == "bytes" else None,
                                  log_base=2 if x == "bytes" else 10)


def _cell(mean: float, std: float) -> str:
    return "-" if math.isnan(mean) else f"{mean:.3f} ± {std:.3f}"


def _bytes(value: float) -> str:
    if math.isnan(value):
        return "-"
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


CAPTION = "final values (last experience), mean ± std over distinct seeds"


def _cells(rows: Sequence[Row]) -> tuple[list[str], list[str], list[list[str]]]:
    """Column titles, which are text (may fold), and each row's cells."""
    varying, extras = varying_keys(rows), extra_metrics(rows)
    titles = short_keys(varying)
    columns = ["method", "buffer", "max size", *(titles[k] for k in varying), "seeds", "bytes",
               "accuracy", "forgetting", *(_metric_name(k) for k in extras)]
    text = ["method", "buffer", *(titles[k] for k in varying)]
    cells = []
    for row in rows:
        seeds = str(len(row.runs)) + (f" (+{len(row.duplicates)} dup)" if row.duplicates else "")
        cells.append([
            row.method, row.buffer, str(row.max_size) if row.max_size is not None else "-",
            *(display_value(row.config.get(k, "")) for k in varying),
            seeds, _bytes(row.mean_std(BYTES)[0]),
            *(_cell(*row.mean_std(k)) for k in (ACCURACY, FORGETTING, *extras)),
        ])
    return columns, text, cells


def print_table(rows: Sequence[Row], title: str, console: Any = None) -> None:
    """The rows as a table. Piped (not a terminal): as wide as the table needs. In a
    terminal: a table when it fits (long names fold), else one block per configuration whose
    fields wrap as whole fields; no value is ever cut."""
    from rich import box
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    columns, text, cells = _cells(rows)
    table = Table(title=title, box=box.SIMPLE_HEAD, caption=CAPTION)
    for i, col in enumerate(columns):
        if col in text:  # folds only values longer than 24 characters
            longest = max(len(v) for v in (col, *(c[i] for c in cells)))
            table.add_column(col, overflow="fold", min_width=min(longest, 24))
        else:
            table.add_column(col, justify="right", no_wrap=True)
    for row_cells in cells:
        table.add_row(*row_cells)
    console = console or Console()
    wide = Measurement.get(console, console.options.update(max_width=10_000), table)
    if not console.is_terminal and "COLUMNS" not in os.environ and console.file is sys.stdout:
        console = Console(width=max(80, wide.maximum))
    if wide.minimum <= console.width:
        console.print(table)
        return
    console.print(title, style="bold")
    for row_cells in cells:
        fields = [f"{col} {value}" for col, value in zip(columns, row_cells, strict=True)]
        console.print(_pack(fields[:3 + len(text) - 2], console.width), highlight=False)
        console.print(_pack(fields[3 + len(text) - 2:], console.width - 4, indent="    "),
                      highlight=False)
    console.print(CAPTION, style="italic")


def _pack(fields: Sequence[str], width: int, indent: str = "") -> str:
    """Fields joined by " · ", wrapped between fields (a field longer than a line is folded)."""
    lines, line = [], ""
    for f in fields:
        candidate = f"{line} · {f}" if line else f
        if line and len(candidate) > width:
            lines.append(line)
            candidate = f
        while len(candidate) > width:
            lines.append(candidate[:width])
            candidate = candidate[width:]
        line = candidate
    lines.append(line)
    return "\n".join(indent + ln for ln in lines)


def report_duplicates(rows: Sequence[Row]) -> None:
    duplicates = [(row, d) for row in rows for d in row.duplicates]
    if not duplicates:
        return
    print(f"cl-report: {len(duplicates)} run(s) repeat a configuration and seed already "
          "reported (the newest run of each is used):", file=sys.stderr)
    for _, run in duplicates:
        print(f"  {run.name} ({run.run_id}, seed {run.seed})", file=sys.stderr)


def sweep_tag(value: str) -> str:
    """The ``sweep`` tag a ``--sweep`` value means: an existing folder as cl-run recorded it
    (absolute, symlinks resolved), anything else verbatim."""
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value.rstrip("/") or value


def queries(sweeps: Sequence[str], extra: str) -> list[str]:
    """MLflow filters whose union is the selection (MLflow's filters cannot say OR)."""
    if not sweeps:
        return [extra]
    out = []
    for sweep in sweeps:
        tag = sweep_tag(sweep).replace("'", "\\'")
        for key in ("sweep", "sweep.previous"):
            out.append(" and ".join(q for q in (f"tags.`{key}` = '{tag}'", extra) if q))
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cl-report", description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else the "
                        "sqlite store under --output-root (as cl-run)")
    parser.add_argument("--output-root", default=os.environ.get("CL_RUNNER_OUTPUT_ROOT",
                                                                "outputs"),
                        help="cl-run's paths.output_root (default: $CL_RUNNER_OUTPUT_ROOT "
                        "or ./outputs)")
    parser.add_argument("--experiment", default="cl_runner", help="MLflow experiment name")
    parser.add_argument("--sweep", action="append", default=[],
                        help="a sweep folder (the runs' `sweep` tag; relative paths work); "
                        "repeat to report several sweeps together")
    parser.add_argument("--filter", default="", help="an MLflow filter string, e.g. "
                        "\"params.benchmark._target_ LIKE '%%Digits'\" (with --sweep: both)")
    parser.add_argument("--x", choices=("size", "bytes"), default="size",
                        help="the chart's x axis: buffer.max_size (samples), or the buffer's "
                        "memory in bytes (buffer/bytes after the last experience), which "
                        "compares methods that store different payloads at equal memory")
    parser.add_argument("--log-x", action="store_true", help="logarithmic x axis")
    parser.add_argument("--out", type=Path, default=Path("report"),
                        help=f"folder for {CSV_FILE} and the chart (default: ./report)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = parse_args(argv)
    uri = resolve_tracking_uri(args.tracking_uri, args.output_root)
    selection = queries(args.sweep, args.filter)
    described = " or ".join(q for q in selection if q)
    runs = [RunRecord.from_mlflow(r) for r in finished_runs(uri, args.experiment, selection)]
    if not runs:
        raise SystemExit(f"cl-report: error: no FINISHED runs in {args.experiment!r} at {uri}"
                         + (f" matching {described}" if described else ""))
    rows = summarize(runs)
    n_used = sum(len(r.runs) for r in rows)
    print_table(rows, f"{n_used} runs of {args.experiment}, {len(rows)} configurations"
                + (f" ({described})" if described else ""))
    report_duplicates(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / CSV_FILE)
    png = write_plot(rows, args.out, args.x, args.log_x)
    print(f"wrote {args.out / CSV_FILE} and {png}")


if __name__ == "__main__":
    main()
