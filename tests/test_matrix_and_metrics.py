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
