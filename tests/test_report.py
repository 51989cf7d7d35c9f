"""`cl-report`: grouping by configuration, distinct seeds, duplicates, columns, chart.

Runs are MLflow-shaped records (params as strings, latest metric values) so that these tests
need no store; the slow sweep-resume test (tests/test_sweep_resume.py) runs cl-report on the
runs of a real sweep in a real store.
"""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from cl_runner import report

REPLAY, NAIVE = "cl_runner.training.Replay", "cl_runner.training.Naive"
PARAMETRIC = "cl_runner.buffers.ParametricBuffer"
RESERVOIR = "cl_runner.buffers.ReservoirSamplingBuffer"
RANDOM = "cl_runner.buffers.RandomExemplarsSelectionStrategy"
HERDING = "cl_runner.buffers.HerdingSelectionStrategy"
SWEEP = "/abs/outputs/multiruns/2026-11-29/12-00-00-abc123"
_TIME = iter(range(1_000, 10**6))


def fake_run(seed: int, acc: float, *, size: int = 20, buffer: str = PARAMETRIC,
             groupby: str | None = "class", selection: str = RANDOM, strategy: str = REPLAY,
             lr: float = 0.001, nbytes: float | None = None, run_id: str | None = None,
             output_root: str = "/abs/outputs", **metrics: float) -> SimpleNamespace:
    """An MLflow run as search_runs returns it: string params, latest metric values."""
    params = {"strategy._target_": strategy, "strategy.train_epochs": "1",
              "buffer._target_": buffer, "buffer.max_size": str(size),
              "selection._target_": selection, "optimizer._target_": "torch.optim.Adam",
              "optimizer.lr": str(lr), "seed": str(seed), "benchmark.seed": str(seed),
              "benchmark._target_": "cl_runner.benchmarks.SplitDigits", "device": "cpu",
              "paths.output_root": output_root, "tracking.tracking_uri": "None",
              "name": "None", "resume": "False", "benchmark.root": output_root + "/data"}
    if buffer == PARAMETRIC:
        params["buffer.groupby"] = str(groupby)
    values = {"accuracy/average_seen": acc, "forgetting/average": 1 - acc,
              "buffer/bytes": float(size * 264 if nbytes is None else nbytes), **metrics}
    values = {k.replace("__", "/"): v for k, v in values.items()}
    start = next(_TIME)
    run_id = run_id or f"id{start}"
    return SimpleNamespace(info=SimpleNamespace(run_id=run_id, run_name=f"run-{run_id}",
                                                start_time=start),
                           data=SimpleNamespace(params=params, metrics=values))


def summarize(runs: list[SimpleNamespace]) -> list[report.Row]:
    return report.summarize(report.RunRecord.from_mlflow(r) for r in runs)


def test_seeds_are_distinct_seeds_and_repeats_are_duplicates():
    # the case: three runs with seed 0 are one seed, not three
    runs = [fake_run(0, 0.5), fake_run(0, 0.6), fake_run(0, 0.7)]
    (row,) = summarize(runs)
    assert len(row.runs) == 1 and len(row.duplicates) == 2
    assert row.runs[0].metrics["accuracy/average_seen"] == 0.7  # the newest run
    assert row.mean_std(report.ACCURACY) == (0.7, 0.0)
    # two seeds plus a repeat of seed 1: mean and std over the two seeds only
    runs = [fake_run(0, 0.5), fake_run(1, 0.9), fake_run(1, 0.8)]
    (row,) = summarize(runs)
    assert [r.seed for r in row.runs] == ["0", "1"] and len(row.duplicates) == 1
    mean, std = row.mean_std(report.ACCURACY)
    assert mean == pytest.approx(0.65) and std == pytest.approx(statistics.stdev([0.5, 0.8]))


def test_rows_are_configurations_method_buffer_and_hyper_parameters():
    runs = [fake_run(s, 0.5 + s / 10, size=size) for size in (20, 50) for s in (0, 1)]
    runs += [fake_run(0, 0.4, buffer=RESERVOIR), fake_run(0, 0.45, groupby=None),
             fake_run(0, 0.42, selection=HERDING), fake_run(0, 0.3, lr=0.01),
             fake_run(0, 0.2, strategy=NAIVE, buffer="None", size=0)]
    # the same config run from another output root is the same configuration
    runs.append(fake_run(1, 0.7, size=50, output_root="/elsewhere/outputs"))
    rows = summarize(runs)
    labels = [(r.method, r.buffer, r.max_size, r.config["optimizer.lr"]) for r in rows]
    assert labels == [
        ("naive", "none", 0, "0.001"),
        ("replay", "parametric-all", 20, "0.001"),
        ("replay", "parametric-class", 20, "0.001"),
        ("replay", "parametric-class", 50, "0.001"),
        ("replay", "parametric-class", 20, "0.01"),
        ("replay", "parametric-class-herding", 20, "0.001"),
        ("replay", "reservoir", 20, "0.001"),
    ]
    assert [len(r.runs) for r in rows] == [1, 1, 2, 2, 1, 1, 1]
    assert len(rows[3].duplicates) == 1  # seed 1 of size 50 ran twice
    # columns: what differs between rows besides method, buffer and size
    assert report.varying_keys(rows) == ["optimizer.lr"]


def test_csv_columns_and_extra_metrics(tmp_path: Path):
    runs = [fake_run(s, 0.5 + s / 10, anytime__aaa=0.6 + s / 10, anytime__wc_acc=0.3)
            for s in (0, 1, 2)]
    runs.append(fake_run(0, 0.4, size=50, nbytes=12_345))
    rows = summarize(runs)
    report.write_csv(rows, tmp_path / "report.csv")
    with open(tmp_path / "report.csv", newline="") as f:
        records = list(csv.DictReader(f))
    first = records[0]
    assert list(first)[:3] == ["method", "buffer", "max_size"]
    assert {"aaa_mean", "aaa_std", "wc_acc_mean", "n_seeds", "duplicates"} <= set(first)
    assert first["seeds"] == "0 1 2" and first["n_seeds"] == "3"
    assert float(first["aaa_mean"]) == pytest.approx(0.7)
    assert float(first["aaa_std"]) == pytest.approx(0.1)
    assert float(records[1]["buffer_bytes"]) == 12_345
    assert records[1]["aaa_mean"] == "nan"  # not logged by that run
    assert report.extra_metrics(rows) == ["anytime/aaa", "anytime/wc_acc"]


def _render(rows: list[report.Row], width: int) -> str:
    buffer = io.StringIO()
    report.print_table(rows, "t", console=Console(file=buffer, width=width))
    return buffer.getvalue()


def test_table_is_not_cut_piped_and_wraps_in_a_narrow_terminal(capsys, monkeypatch):
    runs = [fake_run(0, 0.5, groupby=None, selection=HERDING, anytime__aaa=0.61),
            fake_run(0, 0.6, lr=0.01, anytime__aaa=0.62)]
    rows = summarize(runs)
    monkeypatch.delenv("COLUMNS", raising=False)
    report.print_table(rows, "title")  # piped: as wide as the table needs
    out = capsys.readouterr().out
    assert "…" not in out and "parametric-all-herding" in out and "0.610 ± 0.000" in out
    assert max(map(len, out.splitlines())) > 80
    narrow = _render(rows, 60)
    print(narrow)  # a narrow terminal: text folds, numbers stay whole
    assert "…" not in narrow and max(map(len, narrow.splitlines())) <= 60
    assert "0.500 ± 0.000" in narrow and "0.610 ± 0.000" in narrow


def test_main_with_a_relative_sweep_and_bytes_on_a_log_axis(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "outputs" / "multiruns" / "day" / "time"
    sweep.mkdir(parents=True)
    runs = [fake_run(s, 0.4 + size / 1000 + s / 100, size=size, buffer=b)
            for b in (PARAMETRIC, RESERVOIR) for size in (20, 200) for s in (0, 1)]
    runs.append(fake_run(0, 0.2, strategy=NAIVE, buffer="None", size=0, nbytes=0))
    seen = {}

    def finished_runs(uri: str, experiment: str, queries: list[str]) -> list:
        seen.update(uri=uri, queries=queries)
        return runs

    monkeypatch.setattr(report, "finished_runs", finished_runs)
    monkeypatch.chdir(tmp_path)
    report.main(["--sweep", "outputs/multiruns/day/time/", "--x", "bytes", "--log-x",
                 "--tracking-uri", "sqlite:///x.db", "--out", "rep"])
    tag = str(sweep.resolve())
    assert seen["queries"] == [f"tags.`sweep` = '{tag}'", f"tags.`sweep.previous` = '{tag}'"]
    png = tmp_path / "rep" / "accuracy_vs_buffer_bytes.png"
    assert png.read_bytes().startswith(b"\x89PNG")
    lines, baselines = report.plot_lines(summarize(runs), "bytes")
    assert sorted(lines) == ["replay parametric-class", "replay reservoir"]
    assert [x for x, _, _ in sorted(lines["replay reservoir"])] == [20 * 264, 200 * 264]
    assert list(baselines) == ["naive"]
    assert "wrote rep/report.csv and rep/accuracy_vs_buffer_bytes.png" in capsys.readouterr().out


def test_sweep_tag_of_a_missing_folder_is_taken_verbatim(tmp_path):
    assert report.sweep_tag("/no/such/sweep/") == "/no/such/sweep"
    assert report.queries([], "params.seed = '1'") == ["params.seed = '1'"]
    assert report.queries(["/x"], "params.seed = '1'")[0] == (
        "tags.`sweep` = '/x' and params.seed = '1'")


@pytest.mark.slow
def test_a_sweep_over_methods_reports_each_method_and_size(tmp_path: Path, capsys):
    """The replay-family issue's method sweep, shrunk: 5 methods x 2 sizes x 2 seeds."""
    from tests.helpers import cl_run, local_store

    methods = ("replay", "er_ace", "derpp", "icarl", "gdumb")
    cl_run(tmp_path, "-m", f"strategy={','.join(methods)}", "buffer.max_size=50,100",
           "seed=0,1", "strategy.train_epochs=1", "charts=false", timeout=900)
    runs = [report.RunRecord.from_mlflow(r)
            for r in report.finished_runs(local_store(tmp_path), "cl_runner", [])]
    rows = report.summarize(runs)
    assert sorted((r.method, r.max_size) for r in rows) == sorted(
        (m, s) for m in methods for s in (50, 100))
    assert all(len(r.runs) == 2 and not r.duplicates for r in rows)  # seeds 0 and 1
    lines, baselines = report.plot_lines(rows, "size")
    assert sorted(label.split()[0] for label in lines) == sorted(methods)  # a line per method
    assert all([x for x, _, _ in points] == [50.0, 100.0] for points in lines.values())
    assert not baselines
    report.main(["--output-root", str(tmp_path), "--out", str(tmp_path / "report")])
    assert (tmp_path / "report" / "accuracy_vs_buffer_size.png").stat().st_size > 0
    assert "10 configurations" in capsys.readouterr().out
