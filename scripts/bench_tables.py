"""Aligned-text and Markdown renderings of one table, for the benchmark scripts' output."""

from __future__ import annotations


def table(headers: list[str], rows: list[list]) -> tuple[str, str]:
    """The same table as aligned text (for the terminal) and as Markdown (for the README)."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: list) -> str:
        return "  ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True))

    text = "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])
    md = "\n".join(["| " + " | ".join(headers) + " |",
                    "|" + "|".join("---:" for _ in headers) + "|",
                    *("| " + " | ".join(map(str, r)) + " |" for r in rows)])
    return text, md
