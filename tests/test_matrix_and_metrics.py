"""Accuracy matrix summaries and Avalanche-named plugin metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from cl_runner.evaluation.matrix import AccuracyMatrix

ROWS = [
    [0.90, 0.10, 0.00],
    [0.60, 0.80, 0.05],
    [0.30, 0.50, 0.70],
]


def test_average_accuracy_forgetting_bwt_by_hand():
    m = AccuracyMatrix(3)
    for row in ROWS:
        m.add_row(row)
    assert m.average_accuracy(0) == pytest.approx(0.90)
    assert m.average_accuracy(1) == pytest.approx((0.60 + 0.80) / 2)
    assert m.average_accuracy() == pytest.approx((0.30 + 0.50 + 0.70) / 3)
    assert m.forgetting(0) == []
    assert m.average_forgetting(0) == 0.0
    assert m.forgetting(1) == pytest.approx([0.30])
    assert m.forgetting() == pytest.approx([0.60, 0.30])
    assert m.average_forgetting() == pytest.approx(0.45)
    assert m.bwt() == pytest.approx(-0.45)


def test_matrix_rows_padding_and_bounds():
    m = AccuracyMatrix(3)
    m.add_row(ROWS[0])
    assert math.isnan(m[1, 0]) and math.isnan(m.to_rows()[2][2])
    with pytest.raises(ValueError, match="expected 3"):
        m.add_row([0.1])
    restored = AccuracyMatrix.from_rows(m.to_rows())
    assert restored.rows == m.rows and restored.n == 3


def test_class_units_are_seen_from_the_experience_that_introduces_them():
    m = AccuracyMatrix(4, introduced=[None] * 4)
    m.introduced[0] = m.introduced[1] = 0
    m.add_row([0.9, 0.7, 0.0, 0.0])
    m.introduced[2] = 1  # class 3 is never trained
    m.add_row([0.5, 0.6, 0.8, 0.0])
    assert m.seen(0) == [0, 1] and m.seen(1) == [0, 1, 2]
    assert m.average_accuracy() == pytest.approx((0.5 + 0.6 + 0.8) / 3)
    assert m.forgetting_by_unit() == pytest.approx({0: 0.4, 1: 0.1})
    assert m.bwt() == pytest.approx(-0.25)


def test_measurements_metrics_by_hand():
    from types import SimpleNamespace

    from cl_runner.evaluation.measurements import Measurements

    measured = Measurements(n_experiences=2, n_classes=4)
    stats = SimpleNamespace(
        accuracies={0: 0.8, 1: 0.0}, stream_accuracy=0.4, class_accuracies=[0.9, 0.7, 0.0, 0.0],
        train_loss=1.5, loss_terms={"logit_replay": 0.25}, train_iterations=10,
        train_samples=100, train_seconds=2.0, eval_seconds=0.5)
    measured.add([0, 1], stats, [3, 2, 0, 0])
    first = measured.metrics(stats)
    assert first["accuracy/average_seen"] == pytest.approx(0.8)
    assert first["accuracy/class_000"] == pytest.approx(0.9) and "accuracy/class_002" not in first
    assert not any(k.startswith("forgetting/class_") for k in first)
    assert first["train/loss_logit_replay"] == 0.25 and first["train/samples_per_s"] == 50.0
    stats.accuracies, stats.class_accuracies = {0: 0.5, 1: 0.9}, [0.6, 0.4, 1.0, 0.8]
    measured.add([2, 3], stats, [1, 1, 2, 1])
    second = measured.metrics(stats)
    assert second["forgetting/exp_000"] == pytest.approx(0.3)
    assert second["forgetting/class_000"] == pytest.approx(0.3)
    assert second["forgetting/class_001"] == pytest.approx(0.3)
    assert "forgetting/class_002" not in second and second["bwt"] == pytest.approx(-0.3)
    assert measured.composition == [[3, 2, 0, 0], [1, 1, 2, 1]]
    restored = Measurements(2, 4)
    restored.load_state_dict(measured.state_dict())
    assert restored.metrics(stats) == second
