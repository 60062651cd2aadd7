"""A retried request that reaches a *restarted* server is answered from the store's request
ledger, not applied a second time: a real uvicorn server on 127.0.0.1, stopped and started
again on the same store (SQLite file and PostgreSQL), then the same request id sent again."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator

import httpx
import pytest
import sqlalchemy as sa

from fleetflow import states as st
from fleetflow.orchestrator import Orchestrator
from fleetflow.orchestrator import tables as t
from fleetflow.server.serve import start_in_thread


@pytest.fixture
def store(store_url: str) -> Iterator[Orchestrator]:
    store = Orchestrator.create(store_url)
    yield store
    store.dispose()


def _post_once(store: Orchestrator, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    """One request to a server that starts fresh (nothing in its memory) and is stopped after."""
    server = start_in_thread(store)
    try:
        return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=60)
    finally:
        server.stop()


def _key_names(store: Orchestrator) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(conn.execute(sa.select(t.request_ledger.c.key_name)).scalars())


def test_a_batch_retried_after_a_server_restart_is_applied_once(store):
    _key, secret = store.create_api_key("ledger-admin", "admin")
    run = store.create_flow_run("f")
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    items = [
        {"op": "create_task_run", "body": {"flow_run_id": run.id, "task_key": "k", "name": "t", "id": "tr-restart",
                                           "states": [st.Pending().model_dump(mode="json")]}},
        {"op": "set_task_run_state", "task_run_id": "tr-restart", "body": {"state": st.Running().model_dump(mode="json")}},
        {"op": "write_logs", "body": {"records": [{"flow_run_id": run.id, "message": "once", "timestamp": now}]}},
    ]  # fmt: skip
    headers = {"Authorization": f"Bearer {secret}", "X-Request-Id": "batch-before-the-crash"}

    first = _post_once(store, "/api/v1/batch", {"items": items}, headers)
    # the restarted server, asked as the client's retries ask: looked up in the ledger first
    again = _post_once(store, "/api/v1/batch", {"items": items}, {**headers, "X-Request-Retry": "1"})

    assert first.status_code == again.status_code == 200, first.text
    assert [r.get("ok") for r in first.json()["results"]] == [True, True, True]
    assert "x-request-replayed" not in first.headers
    assert again.headers.get("x-request-replayed") == "true" and again.json() == first.json()
    assert [s.type for s in store.read_task_run_states("tr-restart")] == [st.StateType.PENDING, st.StateType.RUNNING]
    assert [r.message for r in store.read_logs(flow_run_id=run.id)] == ["once"]
    assert _key_names(store) == ["ledger-admin"]  # who asked, never the key

    # a new request id is a new request: applied (and refused here, the task run exists)
    fresh = _post_once(store, "/api/v1/batch", {"items": items[:1]}, {**headers, "X-Request-Id": "another"})
    assert "error" in fresh.json()["results"][0] and "x-request-replayed" not in fresh.headers


def test_a_run_creation_retried_after_a_server_restart_is_applied_once(store):
    _key, secret = store.create_api_key("ledger-runner", "admin")
    headers = {"Authorization": f"Bearer {secret}", "X-Request-Id": "create-before-the-crash"}

    first = _post_once(store, "/api/v1/flow_runs", {"flow_name": "once"}, headers)
    # sent again *without* the retry marker (say, a client that reused an id): no ledger look-up
    # first, so it is applied -- and then rolled back, as its ledger row conflicts, and replayed
    again = _post_once(store, "/api/v1/flow_runs", {"flow_name": "once"}, headers)

    assert first.status_code == again.status_code == 201, first.text
    assert again.headers.get("x-request-replayed") == "true" and again.json() == first.json()
    assert [r.id for r in store.read_flow_runs(flow_name="once")] == [first.json()["id"]]
    # the same id under other credentials is another caller's request: never answered from this one
    _other, other_secret = store.create_api_key("someone-else", "admin")
    theirs = _post_once(store, "/api/v1/flow_runs", {"flow_name": "once"}, {**headers, "Authorization": f"Bearer {other_secret}"})
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
