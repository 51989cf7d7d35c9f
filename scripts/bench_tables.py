"""What the benchmark scripts share: reading a measuring process's ``RESULT`` line, and
aligned-text and Markdown renderings of one table."""

from __future__ import annotations

import json
from pathlib import Path


def result_line(log: Path, source: str = "") -> dict:
    """The JSON of the last ``RESULT {...}`` line a measuring process wrote to ``log``."""
    text = log.read_text()
    for line in reversed(text.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"no RESULT line{source} in {log}:\n{text[-3000:]}")


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
