"""The MLflow UI on a finished tiny sweep, in headless Chromium: the runs table (not the GenAI overview)
with the grid's columns, the parent run expanding to its trials, and the parent's figure and grid table.

Chromium is Debian's (`apt-get install chromium`; .ci/run installs it), driven by Playwright for Python
through ``executable_path``: nothing downloads a browser. Without Chromium the test skips. On a failure
the page's screenshot is left in the test's tmp_path (mlflow_ui.png).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from phaselab.cli.common import mlflow_runs_url
from phaselab.config import load_config
from phaselab.orchestration.grid import run_recon_grid
from phaselab.orchestration.trial_mlflow import RUNS_VIEW_COLUMNS, RUNS_VIEW_NAME

pytestmark = [pytest.mark.browser, pytest.mark.ray]

# Headless, as root (no sandbox), and nothing that reaches out: the machine's network is closed.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Wide enough that the runs table renders every column (the grid draws only the columns in view)
VIEWPORT = {"width": 2200, "height": 1200}
TIMEOUT_MS = 60_000  # one UI step on a busy 2-core machine (the first page load compiles ~10 MB of JS)


def _chromium() -> str:
    path = os.environ.get("PHASELAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip(
            "no Chromium on this machine: the MLflow UI test needs Debian's chromium package "
            "(apt-get install chromium; .ci/run installs it where apt works)"
        )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_ui(tmp_path):
    """``mlflow ui`` on 127.0.0.1 serving a store given later: yields a function store URI -> UI URL."""
    procs: list[subprocess.Popen] = []
    log = tmp_path / "mlflow_ui.log"

    def start(store_uri: str) -> str:
        port = _free_port()
        env = {
            **os.environ,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no background job workers
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        command = [
            "mlflow", "ui", "--backend-store-uri", store_uri,
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ]  # fmt: skip
        with log.open("w") as out:  # its own session: stopped with its worker below
            server = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        procs.append(server)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert server.poll() is None, f"mlflow ui exited:\n{log.read_text()}"
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    return url
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"mlflow ui did not answer on {url} within 180 s:\n{log.read_text()}")

    yield start
    for proc in procs:  # the server and its uvicorn worker: its whole session
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _columns(page) -> set[str]:
    """The runs table's column ids (``tags.`R```, ``metrics.`test_ssim```, ...)."""
    header = page.locator(".ag-header-cell")
    header.last.wait_for()
    return set(header.evaluate_all("cells => cells.map(c => c.getAttribute('col-id'))"))


def test_mlflow_ui_shows_runs_children_and_artifacts(ray_session, mlflow_ui, tmp_path):
    chromium = _chromium()  # before the sweep: skipping costs nothing
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is a test dependency: pip install -e '.[test]'")
    from PIL import Image

    config = load_config("tiny", [f"output_dir={tmp_path / 'out'}", "grid.sources=[gt, zero]"])
    result = run_recon_grid(config, log_fn=lambda _: None)
    assert len(result.rows) == 2
    ui = mlflow_ui(result.tracking_uri)
    # the link phaselab grid prints, on this test's port
    runs_url = mlflow_runs_url(result.tracking_uri, result.experiment_id)
    runs_url = runs_url.replace("http://127.0.0.1:5000", ui)
    experiment_url = f"{ui}/#/experiments/{result.experiment_id}?workflowType=machine_learning"
    artifacts_url = (
        f"{ui}/#/experiments/{result.experiment_id}/runs/{result.parent_run_id}/artifacts"
        "?workflowType=machine_learning"
    )
    by_source = {row["cell"]["source"]: row for row in result.rows}

    with sync_playwright() as playwright:
        # Playwright starts Chromium on a fresh temporary profile (--user-data-dir), and every context
        # is a new, empty browser state: no columns or workflow remembered from another visit.
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = None
        try:
            # A first visit: the experiment opens on its runs table (not on the GenAI overview) in
            # MLflow's default view, and phaselab's saved view is in the Views menu.
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(experiment_url)
            parent = page.locator(".ag-row", has_text="tiny-grid")
            parent.first.wait_for()
            assert "/runs" in page.url and "/overview" not in page.url, page.url
            assert not set(RUNS_VIEW_COLUMNS) & _columns(page)
            page.get_by_test_id("saved-views-trigger").click()
            page.get_by_text(RUNS_VIEW_NAME, exact=True).click()
            page.locator(f".ag-header-cell[col-id='{RUNS_VIEW_COLUMNS[-1]}']").wait_for()
            assert set(RUNS_VIEW_COLUMNS) <= _columns(page)

            # Another first visit, on the printed link: source, R, nACS, seed, test SSIM/PSNR as columns.
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(runs_url)
            parent = page.locator(".ag-row", has_text="tiny-grid")
            parent.first.wait_for()
            assert set(RUNS_VIEW_COLUMNS) <= _columns(page)

            # The parent run expands to its trials.
            child = {s: page.locator(".ag-row", has_text=f"R4 n4 {s} s0") for s in by_source}
            assert child["gt"].count() == 0
            parent.first.locator("button[data-component-id*='runnamecellrenderer']").click()
            for source, row in by_source.items():
                child[source].first.wait_for()
                index = child[source].first.get_attribute("row-index")
                cells = page.locator(f".ag-center-cols-container .ag-row[row-index='{index}']")

                def cell(key, cells=cells):
                    return cells.locator(f"[col-id='{key}']").inner_text().strip()

                assert cell("tags.`source`") == source
                assert (cell("tags.`R`"), cell("tags.`nACS`"), cell("tags.`seed`")) == ("4", "4", "0")
                assert float(cell("metrics.`test_ssim`")) == pytest.approx(row["test_ssim"], rel=1e-6)

            # The parent's artifacts: a figure renders as an image, the metric grid as a table.
            page.goto(artifacts_url)

            def artifact(name):
                return page.locator(f"[artifact-name='{name}']")

            artifact("figures").click()
            artifact("ssim_vs_R.png").click()
            image = page.locator(".mlflow-artifact-right img").first
            image.wait_for()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
            size = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            logged = next(Path(result.output_dir, "mlartifacts").rglob("figures/ssim_vs_R.png"))
            with Image.open(logged) as png:
                assert tuple(size) == png.size

            artifact("grid").click()
            artifact("metric_grid.json").click()
            table = page.locator(".mlflow-artifact-right [role=table]")
            table.wait_for()
            columns = {c.strip() for c in table.locator("[role=columnheader]").all_inner_texts()}
            assert {"source", "acceleration", "num_acs", "ssim_mean", "ssim_std"} <= columns
            rows = table.locator("[role=row]:not(.table-isHeader)")
            sources = sorted(r.split("\n")[0].strip() for r in rows.all_inner_texts())
            assert sources == ["gt", "zero", "zero_filled"]  # one row per source, none repeated
        except BaseException:
            if page is not None:
                page.screenshot(path=str(tmp_path / "mlflow_ui.png"), full_page=True)
            print(f"MLflow UI: screenshot and server log in {tmp_path} (mlflow_ui.png, mlflow_ui.log)")
            raise
        finally:
            browser.close()
