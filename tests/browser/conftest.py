"""Browser tests: Playwright drives Debian's chromium against a real uvicorn on 127.0.0.1.

One chromium and one server per module (module fixtures), each test on a fresh page. The
server serves a real SQLite store that the flagship example (``examples/ml_pipeline/run.py``,
run as a subprocess over HTTP) filled, and script flows run as real processes against it.

Screenshots go to a temporary folder, or to ``FLEETFLOW_UI_SCREENSHOTS`` when set
(``scripts/ui_screenshots.sh`` sets it to ``docs/ui`` to regenerate the committed set).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from browser_helpers import ScriptFlow, Served
from waiting import scaled

from fleetflow.orchestrator import Orchestrator
from fleetflow.server.serve import start_in_thread

ROOT = Path(__file__).resolve().parents[2]
SHOTS_ENV = "FLEETFLOW_UI_SCREENSHOTS"
VIEWPORT = {"width": 1280, "height": 860}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(item.path).resolve().is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is missing: run `make test-deps` (installs it with apt)", pytrace=False)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("ui-home")
    store = Orchestrator.create(f"sqlite:///{home / 'ui.db'}")
    _record, key = store.create_api_key("browser-admin", "admin")
    server = start_in_thread(store, ui=True)
    yield Served(server, store, key, home)
    server.stop()
    store.dispose()


@pytest.fixture(scope="module")
def pipeline(served: Served) -> dict[str, str]:
    """The flagship example run once against the server: a parent and its three sized children."""
    out = subprocess.run([sys.executable, str(ROOT / "examples/ml_pipeline/run.py")], env=served.env(), cwd=served.home,
                         capture_output=True, text=True, timeout=scaled(300))  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (parent,) = served.store.read_flow_runs(flow_name="ml-pipeline", limit=2)
    return {"parent": parent.id, "stdout": out.stdout}


@pytest.fixture(scope="module")
def context(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        ctx = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=chromium, headless=True,
            args=["--headless", "--no-sandbox"], viewport=VIEWPORT,
        )  # fmt: skip
        yield ctx
        ctx.close()


@pytest.fixture
def page(context) -> Iterator[object]:
    tab = context.new_page()
    tab.set_default_timeout(scaled(60) * 1000)
    yield tab
    tab.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ[SHOTS_ENV]) if os.environ.get(SHOTS_ENV) else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def script_flows(served: Served, tmp_path) -> Iterator[callable]:
    started: list[ScriptFlow] = []

    def start(kind: str) -> ScriptFlow:
        flow = ScriptFlow(served, kind, tmp_path / f"{kind}-{len(started)}.fifo")
        started.append(flow)
        return flow

    yield start
    for flow in started:
        flow.stop()
