"""The MLflow UI of a finished sweep, in a real browser: headless Chromium (Debian's, driven by
Playwright) on the sweep's server lists the trials with their swept parameter and objective,
and compares two of them. Screenshots go to the test's tmp_path, and also to
$RAYSWEEP_SCREENSHOTS when that is set:

    RAYSWEEP_SCREENSHOTS=/tmp/shots pytest tests/tracking/test_mlflow_ui.py
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"  # Debian's package (`.ci/run` installs it); Playwright's own browsers are not installed
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Wide enough that the runs table renders the added columns (it only renders columns in view).
VIEWPORT = {"width": 1920, "height": 1080}
TIMEOUT_MS = 120_000  # the UI's first load on a busy 2-core machine


class ApiCalls:
    """The page's pending API calls (fetch/XHR). Playwright's own "networkidle" never comes on
    this UI: MLflow 3 starts a telemetry web worker whose script request this Chromium never
    reports finished to Playwright, so the wait is on the calls that bring the data."""

    def __init__(self, page):
        self.page = page
        self.pending: set = set()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request) -> None:
        if request.resource_type in ("fetch", "xhr"):
            self.pending.add(request)

    def _ended(self, request) -> None:
        self.pending.discard(request)

    def settle(self, quiet_s: float = 0.5, timeout_s: float = 60.0) -> None:
        """Until no API call has been pending for `quiet_s`."""
        deadline = time.monotonic() + timeout_s
        quiet_since = None
        while True:
            self.page.wait_for_timeout(100)  # lets Playwright deliver the page's events
            now = time.monotonic()
            quiet_since = None if self.pending else (quiet_since or now)
            if quiet_since is not None and now - quiet_since >= quiet_s:
                return
            if now > deadline:
                raise AssertionError(f"API calls still pending after {timeout_s:.0f} s: {sorted(r.url for r in self.pending)}")


@pytest.fixture
def browser_page(tmp_path) -> Iterator:
    """A page of a fresh headless Chromium (own profile); the browser is closed at the end."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, viewport=VIEWPORT,
        )
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            context.close()


@pytest.fixture
def screenshots(tmp_path) -> Iterator[Path]:
    """Where the test saves screenshots; copied to $RAYSWEEP_SCREENSHOTS (if set) at the end, pass or fail."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    try:
        yield folder
    finally:
        target = os.environ.get("RAYSWEEP_SCREENSHOTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            for shot in folder.glob("*.png"):
                shutil.copy2(shot, Path(target) / shot.name)


def test_the_ui_lists_the_trials_with_their_parameter_and_objective_and_compares_two(tracked_sweep, browser_page, screenshots):
    from mlflow import MlflowClient

    from raysweep.commands.ui import experiment_url

    client = MlflowClient(tracked_sweep.server.uri)
    runs = client.search_runs([tracked_sweep.experiment_id], "tags.`raysweep.role` = 'trial'", order_by=["params.`optimizer.lr` ASC"])
    assert len(runs) == 3
    page = browser_page
    api = ApiCalls(page)
    try:
        # the experiment, opened as `raysweep ui` links to it, shows its runs (not MLflow 3's GenAI overview)
        page.goto(experiment_url(tracked_sweep.server.uri, tracked_sweep.experiment_id), wait_until="load")
        api.settle()
        page.get_by_text(re.compile(r"^4 matching runs")).wait_for()  # the sweep's run and its 3 trials
        page.screenshot(path=str(screenshots / "mlflow-experiment.png"), full_page=True)
        _close_assistant(page)

        # the trials are nested under the sweep's run: expand it
        sweep_cell = page.get_by_role("gridcell").filter(has=page.get_by_role("link", name=tracked_sweep.sweep_id, exact=True))
        sweep_cell.get_by_role("button").click()
        for run in runs:
            page.get_by_role("link", name=run.info.run_name, exact=True).wait_for()

        # show the swept parameter and the objective as columns
        page.get_by_role("button", name="Columns", exact=True).click()
        for column in ("optimizer.lr", "val/macro_f1"):
            _add_column(page.get_by_role("dialog"), column)
        page.keyboard.press("Escape")
        api.settle()
        for run in runs:  # each trial's row (AG Grid keys rows by run id) shows its own values
            row = page.locator(f'[role="row"][row-id="{run.info.run_id}"]')
            lr = row.locator('[role="gridcell"][col-id="params.`optimizer.lr`"]')
            f1 = row.locator('[role="gridcell"][col-id="metrics.`val/macro_f1`"]')
            lr.wait_for()
            assert float(lr.inner_text()) == float(run.data.params["optimizer.lr"])
            assert float(f1.inner_text()) == pytest.approx(run.data.metrics["val/macro_f1"])
        page.screenshot(path=str(screenshots / "mlflow-runs.png"), full_page=True)

        # select the lowest and the highest learning rate, and compare them
        chosen = [runs[0], runs[-1]]
        for run in chosen:
            row = page.get_by_role("row").filter(has=page.get_by_role("link", name=run.info.run_name, exact=True))
            row.get_by_role("checkbox").first.check()
        page.get_by_role("button", name="Compare", exact=True).click()
        page.wait_for_url(re.compile(r"#/compare-runs\?"))
        api.settle()
        page.get_by_role("heading", name=re.compile(r"Comparing 2 Runs")).wait_for()
        lr_row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="optimizer.lr", exact=True))
        assert lr_row.get_by_role("cell").all_inner_texts() == [run.data.params["optimizer.lr"] for run in chosen]
        assert page.get_by_role("link", name="val/macro_f1", exact=True).is_visible()
        for run in chosen:
            assert page.get_by_role("cell", name=run.info.run_name, exact=True).is_visible()
        page.set_viewport_size({**VIEWPORT, "height": 2200})  # the page scrolls inside the app: a tall window shows it all
        page.screenshot(path=str(screenshots / "mlflow-compare.png"))
    except BaseException:
        with contextlib.suppress(Exception):  # the page as it was, for whoever reads the failure
            page.screenshot(path=str(screenshots / "mlflow-failure.png"), full_page=True)
        raise


def _add_column(dialog, name: str) -> None:
    """Tick `name` in the Columns dialog. Its search also lists names that contain `name` (the
    sweep run's `space.optimizer.lr`, `best/val/macro_f1`) with the match in bold: the entry
    wanted is the one whose whole label is `name`."""
    dialog.get_by_role("textbox", name="Search columns").fill(name)
    label = dialog.get_by_text(name, exact=True).locator("xpath=..").filter(has_text=re.compile(rf"^{re.escape(name)}$"))
    label.click()


def _close_assistant(page) -> None:
    """MLflow 3 opens its assistant beside the table; closed, the table has room for our columns."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    close = page.get_by_role("button", name="Close", exact=True)
    try:
        close.wait_for(timeout=5_000)
    except PlaywrightTimeout:  # not shown in this build or layout
        return
    close.click()
