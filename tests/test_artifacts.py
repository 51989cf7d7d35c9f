"""A run's artifacts, downloaded from MLflow, agree exactly with its metric histories."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.helpers import history, local_store, run_here, runs_of

N_EXP, N_CLASSES = 5, 10
OVERRIDES = ("strategy.train_epochs=1", "charts=true")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    root = tmp_path_factory.mktemp("artifacts")
    run_here(root, *OVERRIDES)
    uri = local_store(root)
    (run,) = runs_of(uri)
    client = MlflowClient(tracking_uri=uri)
    folder = Path(client.download_artifacts(run.info.run_id, "", str(root / "download")))
    return uri, run.info.run_id, folder


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))[1:]


@pytest.mark.parametrize("name", ["accuracy_matrix.png", "buffer_composition.png",
                                  "class_accuracy.png", "class_forgetting.png"])
def test_charts_are_png_images(artifacts, name):
    _, _, folder = artifacts
    data = (folder / name).read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_accuracy_matrix_csv_equals_metric_histories(artifacts):
    uri, run_id, folder = artifacts
    rows = _rows(folder / "accuracy_matrix.csv")
    assert [int(r[0]) for r in rows] == list(range(N_EXP))
    for j in range(N_EXP):
        column = [(i, float(r[1 + j])) for i, r in enumerate(rows)]
        assert history(uri, run_id, f"accuracy/exp_{j:03d}") == column


def test_buffer_composition_csv_equals_metric_histories(artifacts):
    uri, run_id, folder = artifacts
    rows = _rows(folder / "buffer_composition.csv")
    assert [int(r[0]) for r in rows] == list(range(N_EXP))
    for c in range(N_CLASSES):
        column = [(i, float(r[1 + c])) for i, r in enumerate(rows)]
        assert history(uri, run_id, f"buffer/class_{c:03d}") == column


def test_metrics_file_has_one_line_per_step_equal_to_mlflow(artifacts):
    uri, run_id, folder = artifacts
    lines = [json.loads(ln) for ln in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == list(range(N_EXP))
    keys = {k for ln in lines for k in ln} - {"step"}
    # 5 accuracies, 4 forgettings, buffer counts of 10 classes, 10 class accuracies, 8 class
    # forgettings (the classes of experiences 0-3), 11 summaries
    assert len(keys) == 48
    for key in keys:
        expected = [(ln["step"], ln[key]) for ln in lines if key in ln]
        assert history(uri, run_id, key) == expected, key


def test_resolved_config_is_uploaded(artifacts):
    _, _, folder = artifacts
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["strategy"]["train_epochs"] == 1 and config["buffer"]["max_size"] == 200


def test_charts_of_a_cut_short_run_without_buffer_and_of_many_classes(tmp_path):
    """A failed run has fewer rows; buffer=none has only zeros; CIFAR-100 has 100 classes."""
    from cl_runner.plots import accuracy_matrix_png, buffer_composition_png

    paths = [
        accuracy_matrix_png([[0.9, 0.0, 0.0]], tmp_path / "a.png"),
        buffer_composition_png([[0] * 10, [0] * 10], tmp_path / "b.png"),
        buffer_composition_png([[2] * 100, [1] * 100], tmp_path / "c.png"),
    ]
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in paths)


def test_class_accuracy_agrees_with_experience_accuracy_and_forgetting_by_hand(artifacts):
    """Experience j's accuracy is the sample-weighted mean of its classes' accuracies; class
    forgetting is its accuracy right after its experience minus its accuracy now."""
    from cl_runner.benchmarks import SplitDigits

    uri, run_id, folder = artifacts
    bench = SplitDigits(5, seed=0)
    exp_rows = [[float(v) for v in r[1:]] for r in _rows(folder / "accuracy_matrix.csv")]
    class_rows = [[float(v) for v in r[1:]] for r in _rows(folder / "class_accuracy.csv")]
    forgetting = [[float(v) for v in r[1:]] for r in _rows(folder / "class_forgetting.csv")]
    for j, exp in enumerate(bench.test_stream):
        counts = {c: int((exp.dataset.targets == c).sum()) for c in exp.classes_in_this_experience}
        for i in range(N_EXP):
            weighted = sum(class_rows[i][c] * n for c, n in counts.items()) / sum(counts.values())
            assert weighted == pytest.approx(exp_rows[i][j])
            for c in counts:
                if j < i:
                    assert forgetting[i][c] == pytest.approx(class_rows[j][c] - class_rows[i][c])
                    assert history(uri, run_id, f"forgetting/class_{c:03d}")[i - j - 1] == (
                        i, pytest.approx(forgetting[i][c]))
                else:
                    assert forgetting[i][c] != forgetting[i][c]  # NaN: not forgettable yet
