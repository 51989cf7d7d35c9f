#!/usr/bin/env python3
"""Walk the README's MLflow UI steps in headless Chromium; print what each page shows.

Usage::

    mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db --port 5000 &
    python scripts/ui_walkthrough.py http://127.0.0.1:5000 \
        --sweep "$(realpath outputs/multiruns/DATE/TIME-TOKEN)" --out /tmp/ui_shots

The steps are the README's ("Sweeps and the MLflow UI") and tests/test_ui.py checks what
``walk`` returns, so the README, this script and the test cannot drift apart. MLflow 3.17.

Needs ``pip install playwright`` (the dev extra) and Debian's ``chromium``: Playwright drives
the system browser through ``executable_path`` (``playwright install`` is never run). Every
step waits for an element, never for "networkidle": the runs page polls the server.
"""

from __future__ import annotations

import argparse
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 90_000
PNGS = ("accuracy_matrix.png", "buffer_composition.png")
COLUMNS = ("buffer.max_size", "accuracy/average_seen")
MATCHING = re.compile(r"^\d+ matching runs?$")


@dataclass
class Observed:
    """What the walkthrough saw, step by step."""

    experiments: list[str] = field(default_factory=list)
    count_before: str = ""          # "N matching runs" before the filter
    count_after: str = ""           # ... after it
    rows_after: list[str] = field(default_factory=list)
    table: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (size, accuracy)
    chart_text: str = ""            # the accuracy/average_seen chart card
    chart_traces: int = 0
    other_chart: str = ""           # the card found by "Search metric charts"
    run: str = ""
    artifacts: list[str] = field(default_factory=list)
    images: dict[str, tuple[int, int]] = field(default_factory=dict)  # rendered sizes


def walk(page: Any, url: str, sweep: str, experiment: str = "cl_runner",
         other_metric: str = "buffer/size", out: Path | None = None) -> Observed:
    """The README's steps, in order; a screenshot after each when ``out`` is given."""
    seen = Observed()

    def shot(name: str) -> None:
        if out is not None:
            page.screenshot(path=out / f"{name}.png")

    page.set_default_timeout(TIMEOUT_MS)
    # 1. Home: the toggle at the top left to "Model training", then the experiment
    page.goto(url)
    page.get_by_role("button", name="Model training").click()
    links = page.get_by_test_id("experiment-list-item-link")
    links.first.wait_for()
    seen.experiments = links.all_inner_texts()
    shot("1_home")
    links.filter(has_text=experiment).first.click()
    rows = page.locator(".ag-center-cols-container [role=row]")
    rows.first.wait_for()  # the count reads 0 until the runs are loaded
    seen.count_before = page.get_by_text(MATCHING).inner_text()
    assistant = page.get_by_role("button", name="Close")  # the MLflow Assistant side panel
    if assistant.count():
        assistant.first.click()

    # 2. the sweep: its tag in the search box, then Enter
    box = page.get_by_test_id("search-box")
    box.fill(f"tags.sweep = '{sweep}'")
    with page.expect_response(_search_with("tags.sweep")) as searched:
        box.press("Enter")
    searched.value.finished()
    seen.count_after, seen.rows_after = _settled_rows(page)

    # 3. Columns: tick buffer.max_size and accuracy/average_seen
    page.get_by_role("button", name="Columns").click()
    search = page.get_by_placeholder("Search columns")
    tree = page.get_by_test_id("column-selector-tree")
    for column in COLUMNS:
        search.fill(column)
        tree.get_by_text(column, exact=True).click()
    page.keyboard.press("Escape")
    cells = [page.locator(f".ag-center-cols-container [col-id='{kind}.`{column}`']")
             for kind, column in zip(("params", "metrics"), COLUMNS, strict=True)]
    cells[1].first.wait_for()
    names = page.locator(".ag-pinned-left-cols-container [role=row] a[href*='/runs/']")
    seen.table = dict(zip(names.all_inner_texts(),
                          zip(cells[0].all_inner_texts(), cells[1].all_inner_texts(),
                              strict=True), strict=True))
    shot("2_table")

    # 4. Chart view: one chart per metric, a line per run against the step
    page.locator("label:has(input[name='runs-view-mode'][value='CHART'])").click()
    cards = page.get_by_test_id("experiment-view-compare-runs-card")
    card = cards.filter(has=page.get_by_text("accuracy/average_seen", exact=True)).first
    traces = card.locator(".js-plotly-plot .scatterlayer .trace")
    traces.first.wait_for()
    seen.chart_text, seen.chart_traces = card.inner_text(), traces.count()
    shot("3_charts")
    page.get_by_placeholder("Search metric charts").fill(other_metric)
    other = cards.filter(has=page.get_by_text(other_metric, exact=True)).first
    other.locator(".js-plotly-plot .scatterlayer .trace").first.wait_for()
    seen.other_chart = other.inner_text()

    # 5. a run's Artifacts tab; each PNG opens as an image
    page.locator("label:has(input[name='runs-view-mode'][value='TABLE'])").click()
    link = page.locator("[role=row] a[href*='/runs/']").first
    seen.run = link.inner_text()
    link.click()
    page.get_by_role("tab", name="Artifacts").click()
    files = page.get_by_test_id("artifact-tree-node")
    files.first.wait_for()
    seen.artifacts = files.all_inner_texts()
    for png in PNGS:
        files.filter(has_text=png).first.click()
        image = page.locator(f"img[alt*='{png}']").first
        image.wait_for()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                               arg=image.element_handle())
        width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        seen.images[png] = (width, height)
        shot(f"4_{png.removesuffix('.png')}")
    return seen


def _search_with(text: str) -> Any:
    """A predicate for the UI's runs-search request whose filter contains ``text``."""
    def matches(response: Any) -> bool:
        request = response.request
        return "runs/search" in response.url and text in (request.post_data or request.url)
    return matches


def _settled_rows(page: Any) -> tuple[str, list[str]]:
    """The count and the rows once the table shows as many rows as the count says, twice in
    a row (the table re-renders after a filter)."""
    previous = None
    for _ in range(TIMEOUT_MS // 250):
        page.wait_for_timeout(250)
        count = page.get_by_text(MATCHING).inner_text()
        rows = page.locator(".ag-pinned-left-cols-container [role=row]").all_inner_texts()
        if count == f"{len(rows)} matching run{'s' if len(rows) != 1 else ''}":
            if (count, rows) == previous:
                return count, rows
            previous = (count, rows)
    raise TimeoutError("the runs table did not settle after the filter")


def main() -> None:
    """Command-line entry point."""
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url", help="the UI, e.g. http://127.0.0.1:5000")
    parser.add_argument("--sweep", required=True, help="a sweep folder (the runs' sweep tag)")
    parser.add_argument("--experiment", default="cl_runner")
    parser.add_argument("--out", type=Path, help="folder for a screenshot after each step")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            seen = walk(page, args.url.rstrip("/"), str(Path(args.sweep).resolve()),
                        args.experiment, out=args.out)
        finally:
            browser.close()
    for name, value in vars(seen).items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
