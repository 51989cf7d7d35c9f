#!/usr/bin/env python3
"""Walk through a running MLflow 3.x UI with headless Chromium and time each step.

Usage::

    python scripts/ui_walkthrough_probe.py http://127.0.0.1:5000 EXPERIMENT_ID \
        [--filter "tags.sweep = 'x'"] [--out /tmp/shots] [--chromium /usr/bin/chromium]

Needs ``pip install playwright`` and Debian's ``chromium`` package: the browser
that ``playwright install`` would download is not used, Playwright drives the
system one through ``executable_path``.  Each step waits for an element, never
for "networkidle" (the runs page polls, so the network is never idle).

Selectors used (MLflow 3.17):

* sidebar toggle: ``get_by_role("button", name="Model training")`` (the UI opens
  in "GenAI" mode, where an experiment link leads to a GenAI overview);
* experiment list: ``get_by_test_id("experiment-list-item-link")``;
* runs page: ``#/experiments/ID/runs`` (``?workflowType=machine_learning`` also
  forces the training view); search box ``get_by_test_id("search-box")``, then
  Enter; the count is in the text "N matching runs"; one row per run in
  ``.ag-center-cols-container [role=row]``;
* chart view: ``label:has(input[name='runs-view-mode'][value='CHART'])``, charts
  are ``get_by_test_id("experiment-view-compare-runs-card")``;
* run page: ``get_by_role("tab", name="Artifacts")``, files are
  ``get_by_test_id("artifact-tree-node")``.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

TIMEOUT_MS = 60_000


def step(name: str, began: float) -> None:
    """Print the time since `began`."""
    print(f"{time.monotonic() - began:6.2f}s  {name}")


def walk(page: Page, url: str, experiment: str, search: str, out: Path) -> None:
    """Visit home, experiment list, runs table, chart view and a run's artifacts."""
    began = time.monotonic()
    page.goto(url)
    page.get_by_role("button", name="Model training").click(timeout=TIMEOUT_MS)
    page.screenshot(path=out / "home.png")
    step("home rendered, switched to 'Model training'", began)

    page.goto(f"{url}/#/experiments")
    names = page.get_by_test_id("experiment-list-item-link")
    names.first.wait_for(timeout=TIMEOUT_MS)
    step(f"experiment list: {names.all_inner_texts()}", began)

    page.goto(f"{url}/#/experiments/{experiment}/runs")
    box = page.get_by_test_id("search-box")
    box.wait_for(timeout=TIMEOUT_MS)
    counter = page.get_by_text(re.compile(r"^\d+ matching runs?$"))
    rows = page.locator(".ag-center-cols-container [role=row]")
    rows.first.wait_for(timeout=TIMEOUT_MS)  # the counter reads 0 until the runs load
    step(f"runs table: {counter.inner_text()}", began)

    box.fill(search)
    box.press("Enter")
    page.wait_for_url(re.compile(r"searchFilter=.+"), timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)  # let the table re-render after the filter
    page.screenshot(path=out / "filtered.png")
    step(f"filter {search!r}: {counter.inner_text()}, {rows.count()} rows", began)

    page.locator("label:has(input[name='runs-view-mode'][value='CHART'])").click()
    cards = page.get_by_test_id("experiment-view-compare-runs-card")
    cards.first.wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=out / "charts.png")
    step(f"chart view: {cards.count()} charts", began)

    page.locator("label:has(input[name='runs-view-mode'][value='TABLE'])").click()
    page.locator("[role=row] a[href*='/runs/']").first.click()
    page.get_by_role("tab", name="Artifacts").click(timeout=TIMEOUT_MS)
    files = page.get_by_test_id("artifact-tree-node")
    files.first.wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=out / "artifacts.png")
    step(f"artifacts tab: {files.all_inner_texts()}", began)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url")
    parser.add_argument("experiment", help="experiment id")
    parser.add_argument("--filter", default="tags.sweep = 'x'")
    parser.add_argument("--out", type=Path, default=Path("/tmp/ui_probe"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True)
        step(f"chromium {browser.version} launched", began)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        walk(page, args.url.rstrip("/"), args.experiment, args.filter, args.out)
        browser.close()
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
