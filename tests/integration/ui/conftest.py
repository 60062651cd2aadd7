"""The web UI over a real SQLite store, through FastAPI's TestClient (HTML-level tests)."""

from __future__ import annotations

from typing import Iterator

import pytest
from ui_helpers import UI

from fleetflow.orchestrator import Orchestrator
from fleetflow.server.app import create_app
from fleetflow.server.ui import ui_router


@pytest.fixture
def ui(tmp_path) -> Iterator[UI]:
    store = Orchestrator.create(f"sqlite:///{tmp_path / 'ui.db'}")
    keys = {scope: store.create_api_key(f"{scope}-key", scope)[1] for scope in ("read", "run", "worker", "admin")}
    app = create_app(store, ui_router=ui_router())
    yield UI(store, app, keys)
    store.dispose()


