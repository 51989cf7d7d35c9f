"""PNG charts of a run's tables, written beside the CSVs so the MLflow UI can show them.

Figures are drawn on an explicit Agg canvas (no pyplot, no global backend): jobs run on
headless machines and inside launcher workers. matplotlib is imported inside each function,
so runs pay for it only at the end and ``cl-run --help`` not at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
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


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
LINESTYLES = ("-", "--", ":", "-.")
MAX_TICKS = 10  # more x values than this: matplotlib's own ticks
JITTER_IN = 0.05  # horizontal offset between lines, in inches: error bars at one x stay apart


def accuracy_vs_memory_png(
    lines: Mapping[str, Sequence[tuple[float, float, float]]], path: str | Path, *,
    x_label: str, baselines: Mapping[str, tuple[float, float]] | None = None,
    log_x: bool = False, x_format: Callable[[float], str] | None = None, log_base: int = 10,
) -> Path:
    """Final average accuracy (mean, std error bar) against the buffer's size or bytes.

    One line per label (method, buffer and other settings), each with its own marker and
    colour; lines of one method share a line style. Lines are shifted sideways by a few
    pixels so that points at the same x do not hide each other. ``baselines`` (runs without
    memory) are horizontal lines with a std band. Ticks sit at the x values measured
    (written with ``x_format``) when there are few of them.
    """
    from matplotlib.ticker import FixedFormatter, FuncFormatter, NullFormatter
    from matplotlib.transforms import ScaledTranslation

    fig = _figure(8.0, 4.8)
    ax = fig.add_subplot()
    colors = _class_colors(min(max(len(lines), 1), LEGEND_MAX_CLASSES))
    methods = sorted({label.split(" ", 1)[0] for label in lines})
    n = len(lines)
    for i, (label, points) in enumerate(sorted(lines.items())):
        xs, means, stds = zip(*sorted(points), strict=True)
        shift = ScaledTranslation((i - (n - 1) / 2) * JITTER_IN, 0, fig.dpi_scale_trans)
        style = LINESTYLES[methods.index(label.split(" ", 1)[0]) % len(LINESTYLES)]
        ax.errorbar(xs, means, yerr=stds, marker=MARKERS[i % len(MARKERS)], capsize=3,
                    linestyle=style, color=colors[i % len(colors)], label=label,
                    transform=ax.transData + shift)
        # a shifted artist does not count towards the data limits: add its points
        ax.update_datalim([(x, m + d) for x, m, sd in points for d in (-sd, sd)])
    for j, (label, (mean, std)) in enumerate(sorted((baselines or {}).items())):
        color = "0.3" if j == 0 else colors[(n + j) % len(colors)]
        ax.axhline(mean, color=color, linestyle="--", linewidth=1, label=f"{label} (no memory)")
        if std > 0:
            ax.axhspan(mean - std, mean + std, color=color, alpha=0.1)
    if log_x:
        ax.set_xscale("log", base=log_base)
    ax.autoscale_view()
    fmt = x_format or _plain
    xs_all = sorted({x for points in lines.values() for x, _, _ in points})
    if 0 < len(xs_all) <= MAX_TICKS and _apart(xs_all, log_x):  # ticks at the measured x
        ax.set_xticks(xs_all)
        ax.xaxis.set_major_formatter(FixedFormatter([fmt(x) for x in xs_all]))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: fmt(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(x_label + (" (log scale)" if log_x else ""))
    ax.set_ylabel("final average accuracy")
    ax.set_title("final average accuracy vs buffer memory (mean ± std over seeds)")
    ax.grid(alpha=0.3, which="both" if log_x else "major")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.savefig(path, dpi=100)
    return Path(path)


def _apart(xs: Sequence[float], log: bool) -> bool:
    """Whether tick labels at ``xs`` (sorted) would not run into each other."""
    if log:
        return xs[0] > 0 and all(b / a >= 1.4 for a, b in pairwise(xs))
    span = (xs[-1] - xs[0]) or 1.0
    return all(b - a >= span / MAX_TICKS for a, b in pairwise(xs))


def _plain(x: float) -> str:
    return f"{x:g}"


def _class_colors(n: int) -> list[Any]:
    """Distinct colours for up to 20 classes; a gradient beyond (CIFAR-100)."""
    from matplotlib import colormaps

    if n <= LEGEND_MAX_CLASSES:
        cmap = colormaps["tab10" if n <= 10 else "tab20"]
        return [cmap(c) for c in range(n)]
    return [colormaps["viridis"](c / (n - 1)) for c in range(n)]
