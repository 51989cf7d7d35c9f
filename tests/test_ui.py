"""The README's MLflow UI walkthrough, followed by headless Chromium (Debian's `chromium`,
driven by Playwright through `executable_path`) on `mlflow ui` over a small sweep's store.

The steps are the README's ("Sweeps and the MLflow UI"), written once in
scripts/ui_walkthrough.py (``walk``): Model training, the experiment, filter by the sweep
tag, the Columns menu (buffer.max_size, accuracy/average_seen), Chart view, one run's
Artifacts with both PNGs. This test checks what each step showed against the store.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CL_RUN, REPO, cl_env, history, local_store, runs_of
from tests.mlflow_server import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
_spec = importlib.util.spec_from_file_location("ui_walkthrough",
                                               REPO / "scripts" / "ui_walkthrough.py")
walkthrough = sys.modules.setdefault("ui_walkthrough", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(walkthrough)  # the steps the README describes

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="needs Debian's chromium (.ci/run: apt-get install chromium)"),
]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """A 2-job sweep, a run outside it, and `mlflow ui` on the store (started as soon as the
    sweep has created the store, while its jobs train). Yields (root, sweep tag, UI URL)."""
    root = tmp_path_factory.mktemp("ui")
    sweep = subprocess.Popen([*CL_RUN, "-m", "buffer.max_size=20,50", "strategy.train_epochs=1"],
                             env=cl_env(root), cwd=root, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (root / "mlflow.db").exists():  # created whole, by a rename
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()
        time.sleep(0.2)
    url = f"http://127.0.0.1:{free_port()}"
    ui = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", local_store(root),
         "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, out + err
        from mlflow.tracking import MlflowClient  # a run the sweep filter must leave out

        client = MlflowClient(tracking_uri=local_store(root))
        experiment = client.get_experiment_by_name("cl_runner").experiment_id
        other = client.create_run(experiment, run_name="not-in-the-sweep")
        client.log_param(other.info.run_id, "buffer.max_size", "999")
        client.set_terminated(other.info.run_id)
        (tag,) = {r.data.tags["sweep"] for r in runs_of(local_store(root))
                  if "sweep" in r.data.tags}
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=2).close()
                break
            except OSError:
                assert ui.poll() is None and time.monotonic() < deadline, "mlflow ui failed"
                time.sleep(0.5)
        yield root, tag, url
    finally:
        os.killpg(ui.pid, signal.SIGKILL)
        ui.wait(timeout=30)


def test_the_readme_walkthrough_in_a_real_browser(store, tmp_path):
    from playwright.sync_api import sync_playwright

    root, tag, url = store
    uri = local_store(root)
    final = {r.info.run_name: history(uri, r.info.run_id, "accuracy/average_seen")[-1][1]
             for r in runs_of(uri) if r.data.tags.get("sweep") == tag}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            seen = walkthrough.walk(page, url, tag)
        except Exception:
            page.screenshot(path=tmp_path / "failure.png")
            print(f"screenshot of the failure: {tmp_path / 'failure.png'}")
            raise
        finally:
            browser.close()
    assert "cl_runner" in seen.experiments
    # the filter keeps the sweep's two runs and leaves the third out
    assert (seen.count_before, seen.count_after) == ("3 matching runs", "2 matching runs")
    assert not any("not-in-the-sweep" in row for row in seen.rows_after)
    # the table: each run's buffer size and its final average accuracy (MLflow's last step)
    assert sorted(seen.table) == sorted(final)
    for name, (size, accuracy) in seen.table.items():
        assert name == f"parametric-class-m{size}-s0"
        assert float(accuracy) == pytest.approx(final[name], abs=1e-9)
    # Chart view: accuracy/average_seen against the step, a line for each run
    assert "Step" in seen.chart_text and all(name in seen.chart_text for name in final)
    assert seen.chart_traces >= len(final)
    assert "buffer/size" in seen.other_chart
    # the run's artifacts: both PNGs render at the size of the files the run wrote
    assert {*walkthrough.PNGS, "config.yaml", "metrics.jsonl"} <= set(seen.artifacts)
    (folder,) = [p.parent for p in root.glob("multiruns/*/*/*/run_info.json")
                 if f'"name": "{seen.run}"' in p.read_text()]
    for png in walkthrough.PNGS:
        assert seen.images[png] == png_size(folder / png), png
