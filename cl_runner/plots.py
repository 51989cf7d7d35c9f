"""PNG charts of a run's tables, written beside the CSVs so the MLflow UI can show them.

Figures are drawn on an explicit Agg canvas (no pyplot, no global backend): jobs run on
headless machines and inside launcher workers. matplotlib is imported inside each function,
so runs pay for it only at the end and ``cl-run --help`` not at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MATRIX_PNG = "accuracy_matrix.png"
CLASS_ACCURACY_PNG = "class_accuracy.png"
CLASS_FORGETTING_PNG = "class_forgetting.png"
COMPOSITION_PNG = "buffer_composition.png"
ANNOTATED_COLUMNS = 20  # beyond this, cell values would not be readable
LEGEND_MAX_CLASSES = 20  # beyond this a legend hides the chart


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def heatmap_png(
    rows: Sequence[Sequence[float]], path: str | Path, *, columns: str, title: str,
    value: str = "accuracy", signed: bool = False,
) -> Path:
    """Row i = after training experience i, one column per ``columns`` (test experience or
    class); values in [0, 1] (or [-1, 1] when ``signed``), written in the cells when few."""
    n_rows, n_cols = len(rows), len(rows[0])
    fig = _figure(1.6 + min(0.9 * n_cols, 14.0), 1.0 + 0.8 * n_rows)
    ax = fig.add_subplot()
    image = ax.imshow(rows, vmin=-1.0 if signed else 0.0, vmax=1.0,
                      cmap="RdBu_r" if signed else "viridis", aspect="auto")
    if n_cols <= ANNOTATED_COLUMNS:
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if not math.isnan(v):
                    dark = abs(v) > 0.6 if signed else v > 0.6
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center",
                            color="white" if signed == dark else "black", fontsize=8)
        ax.set_xticks(range(n_cols))
    ax.set_yticks(range(n_rows))
    ax.set_xlabel(columns)
    ax.set_ylabel("after training experience")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=value)
    fig.savefig(path, dpi=100)
    return Path(path)


def accuracy_matrix_png(rows: Sequence[Sequence[float]], path: str | Path) -> Path:
    """Heatmap: row i = after training experience i, column j = test experience j."""
    return heatmap_png(rows, path, columns="test experience", title="accuracy matrix")


def buffer_composition_png(composition: Sequence[Sequence[int]], path: str | Path) -> Path:
    """Stacked bars: samples per class in the buffer after each experience."""
    fig = _figure(2.0 + 0.8 * len(composition), 4.0)
    ax = fig.add_subplot()
    steps = list(range(len(composition)))
    bottom = [0] * len(composition)
    colors = _class_colors(len(composition[0]))
    for c, color in enumerate(colors):
        counts = [row[c] for row in composition]
        if any(counts):
            ax.bar(steps, counts, bottom=bottom, label=f"class {c}", color=color)
            bottom = [b + n for b, n in zip(bottom, counts, strict=True)]
    ax.set_xticks(steps)
    ax.set_xlabel("after training experience")
    ax.set_ylabel("samples in buffer")
    ax.set_title("buffer composition")
    if 0 < len(ax.get_legend_handles_labels()[0]) <= LEGEND_MAX_CLASSES:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.savefig(path, dpi=100)
    return Path(path)


def accuracy_vs_size_png(
    lines: Mapping[str, Sequence[tuple[int, float, float]]], path: str | Path
) -> Path:
    """One line per buffer type: final average accuracy (mean, std error bar) vs buffer size."""
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    for label, points in lines.items():
        sizes, means, stds = zip(*sorted(points), strict=True)
        ax.errorbar(sizes, means, yerr=stds, marker="o", capsize=3, label=label)
    ax.set_xlabel("buffer size (buffer.max_size)")
    ax.set_ylabel("final average accuracy")
    ax.set_title("accuracy vs buffer size (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    return Path(path)


def _class_colors(n: int) -> list[Any]:
    """Distinct colours for up to 20 classes; a gradient beyond (CIFAR-100)."""
    from matplotlib import colormaps

    if n <= LEGEND_MAX_CLASSES:
        cmap = colormaps["tab10" if n <= 10 else "tab20"]
        return [cmap(c) for c in range(n)]
    return [colormaps["viridis"](c / (n - 1)) for c in range(n)]
