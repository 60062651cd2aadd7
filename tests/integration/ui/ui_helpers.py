"""Helpers of the web UI's HTML-level tests: an app over a real SQLite store, logged-in
TestClients per key scope, the CSRF token of a page, a deployment to run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from fleetflow.orchestrator import Orchestrator
from fleetflow.orchestrator.schemas import Deployment, WorkPool

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@dataclass
class UI:
    """One app on one store, and the keys of each scope."""

    store: Orchestrator
    app: Any
    keys: dict[str, str]

    def browser(self, scope: str | None = "admin") -> TestClient:
        """A client that logged in with a key of ``scope`` (None: not logged in)."""
        client = TestClient(self.app, follow_redirects=False)  # no lifespan: no background sweeps
        if scope is not None:
            response = client.post("/login", data={"key": self.keys[scope], "next": "/runs"})
            assert response.status_code == 303, response.text
        return client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def make_deployment(store: Orchestrator, name: str = "train", **fields: Any) -> Deployment:
    """A deployment on pool 'ml-pool' (Process by default), parameters ``n: int`` and ``label: str``."""
    store.create_work_pool(WorkPool(id="", name="ml-pool", type="process"), overwrite=True)
    schema = {"type": "object", "properties": {"n": {"type": "integer", "title": "n"}, "label": {"type": "string"}},
              "required": ["n"]}  # fmt: skip
    values = {"parameters": {"n": 10}, "parameter_schema": schema, **fields}
    return store.upsert_deployment(Deployment(id="", name=name, flow_name=f"{name}-flow", entrypoint="flows.py:f",
                                              work_pool_name="ml-pool", **values))  # fmt: skip
