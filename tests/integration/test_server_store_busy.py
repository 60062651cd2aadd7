"""A request that loses a PostgreSQL deadlock is answered 503 StoreBusy, not 500: nothing of
it was applied, and sending it again succeeds (the HTTP client retries 503 by itself).

The deadlock is real and made on purpose: the test's own connection locks task run B, the
server's batch locks A and then waits for B, and the test then asks for A. PostgreSQL finds
the cycle from the server's side (the test's session waits 60 s before it would look), so the
server's transaction is the one rolled back.
"""

from __future__ import annotations

import threading

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from fleetflow import states as st
from fleetflow.orchestrator import Orchestrator
from fleetflow.server.api.errors import store_busy
from waiting import wait_until

pytestmark = pytest.mark.postgres


def _connect(url: str) -> psycopg.Connection:
    parsed = sa.make_url(url)
    return psycopg.connect(host=parsed.query["host"], port=int(parsed.query["port"]), user=parsed.username,
                           dbname=parsed.database, autocommit=False)


def _batch(run_ids: list[str]) -> dict:
    state = st.Completed().model_dump(mode="json")
    return {"items": [{"op": "set_task_run_state", "task_run_id": rid, "body": {"state": state}} for rid in run_ids]}


def test_a_deadlocked_request_is_answered_store_busy_and_applies_when_sent_again(api_server, pg_server):
    url = pg_server.fresh_database()
    store = Orchestrator.create(url)
    try:
        api_server.use_store(store)
        _key, secret = store.create_api_key("busy", "admin")
        flow_run = store.create_flow_run("f", state=st.Running())
        a, b = (store.create_task_run(flow_run.id, "m.t", f"t-{i}", dynamic_key=str(i), states=[st.Pending(), st.Running()])
                for i in range(2))
        headers = {"Authorization": f"Bearer {secret}", "X-Request-Id": "deadlocked-batch"}
        answer: dict = {}

        def send() -> None:
            answer["first"] = httpx.post(f"{api_server.url}/api/v1/batch", json=_batch([a.id, b.id]), headers=headers,
                                         timeout=120)

        test_conn, watcher = _connect(url), _connect(url)
        watcher.autocommit = True
        try:
            test_conn.execute("SET deadlock_timeout = '60s'")
            test_conn.execute("SELECT id FROM task_runs WHERE id = %s FOR UPDATE", (b.id,))
            sender = threading.Thread(target=send)
            sender.start()
            wait_until(lambda: watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> %s",
                (test_conn.info.backend_pid,)).fetchone()[0] > 0, "the server's request to wait for task run B")
            test_conn.execute("SELECT id FROM task_runs WHERE id = %s FOR UPDATE", (a.id,))  # closes the cycle
            test_conn.commit()
            sender.join(timeout=120)
        finally:
            test_conn.close()
            watcher.close()
        first = answer["first"]
        assert first.status_code == 503, first.text
        assert first.json()["code"] == "store_busy" and "deadlock" in first.json()["message"]
        assert [store.read_task_run(r.id).state.type for r in (a, b)] == [st.StateType.RUNNING] * 2  # nothing applied
        again = httpx.post(f"{api_server.url}/api/v1/batch", json=_batch([a.id, b.id]),
                           headers={**headers, "X-Request-Retry": "1"}, timeout=60)
        assert again.status_code == 200 and all(item.get("ok") for item in again.json()["results"]), again.text
        assert [store.read_task_run(r.id).state.type for r in (a, b)] == [st.StateType.COMPLETED] * 2
    finally:
        store.dispose()


def test_only_conflicts_count_as_store_busy():
    deadlock = sa.exc.OperationalError("UPDATE ...", {}, psycopg.errors.DeadlockDetected("deadlock detected"))
    assert store_busy(deadlock) is not None and store_busy(deadlock).http_status == 503
    assert store_busy(psycopg.errors.SerializationFailure("could not serialize")) is not None
    import sqlite3

    assert store_busy(sa.exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))) is not None
    assert store_busy(sa.exc.IntegrityError("INSERT ...", {}, psycopg.errors.UniqueViolation("duplicate key"))) is None
    assert store_busy(sqlite3.OperationalError("no such table: x")) is None
