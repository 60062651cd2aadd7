"""A request's writes in one transaction (orchestrator/request_tx.py), on a real SQLite file
and a real PostgreSQL server: read-your-writes inside it, nothing visible before its commit,
a failed operation undoing only itself (a refused batch item), a second attempt of the same
request rolled back in favour of the first, and long-poll wake-ups only after the commit."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Iterator

import httpx
import pytest

from waiting import scaled, wait_until

from fleetflow import states as st
from fleetflow.exceptions import ObjectAlreadyExists
from fleetflow.orchestrator import Orchestrator
from fleetflow.orchestrator.request_tx import after_commit, request_transaction
from fleetflow.orchestrator.schemas import WorkPool
from fleetflow.server.serve import start_in_thread


@pytest.fixture
def store(store_url: str) -> Iterator[Orchestrator]:
    store = Orchestrator.create(store_url)
    yield store
    store.dispose()


def test_writes_are_invisible_until_the_commit_and_read_back_inside(store_url, store):
    other = Orchestrator.create(store_url)  # another process's view: its own engine
    woken: list[str] = []
    try:
        with request_transaction(store) as tx:
            run = store.create_flow_run("in-tx")
            store.set_flow_run_state(run.id, st.Running())
            after_commit(lambda: woken.append("after"))
            assert store.read_flow_run(run.id).state.type is st.StateType.RUNNING  # read-your-writes
            assert other.read_flow_runs(flow_name="in-tx") == [] and woken == []
            assert store.record_request(tx, "key-1", 201, {"id": run.id}, key_name="t")
            tx.close(commit=True)
        assert [r.id for r in other.read_flow_runs(flow_name="in-tx")] == [run.id]
        assert other.recall_request("key-1") == (201, {"id": run.id}) and woken == ["after"]
    finally:
        other.dispose()


def test_a_second_attempt_of_a_recorded_request_is_rolled_back(store):
    for attempt in range(2):
        with request_transaction(store) as tx:
            store.create_flow_run("twice-sent", parameters={"attempt": attempt})
            recorded = store.record_request(tx, "same-key", 201, {"attempt": attempt})
            tx.close(commit=recorded)
        assert recorded is (attempt == 0)
    assert [r.parameters for r in store.read_flow_runs(flow_name="twice-sent")] == [{"attempt": 0}]
    assert store.recall_request("same-key") == (201, {"attempt": 0})


def test_a_rolled_back_request_leaves_nothing_and_drops_its_wake_ups(store):
    woken: list[str] = []
    with request_transaction(store) as tx:
        run = store.create_flow_run("rolled-back")
        store.create_task_run(run.id, "k", "t", id="tr-gone", states=[st.Pending()])  # the SQLite fast path
        after_commit(lambda: woken.append("after"))
        tx.close(commit=False)
    assert store.read_flow_runs(flow_name="rolled-back") == [] and woken == []
    with pytest.raises(Exception):
        store.read_task_run("tr-gone")


def test_a_failed_operation_undoes_only_itself(store):
    run = store.create_flow_run("f")
    with request_transaction(store) as tx:
        store.create_task_run(run.id, "k", "t", id="tr-1", states=[st.Pending()])
        with pytest.raises(ObjectAlreadyExists):  # a database error inside the transaction (PostgreSQL aborts it)
            store.create_task_run(run.id, "k", "t", id="tr-1", states=[st.Pending()])
        store.set_task_run_state("tr-1", st.Running())
        assert store.record_request(tx, "k-partial", 200, None)
        tx.close(commit=True)
    assert [s.type for s in store.read_task_run_states("tr-1")] == [st.StateType.PENDING, st.StateType.RUNNING]


def test_a_refused_batch_item_keeps_the_others_over_http(store):
    _key, secret = store.create_api_key("tx-admin", "admin")
    run = store.create_flow_run("f")
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    create = {"op": "create_task_run", "body": {"flow_run_id": run.id, "task_key": "k", "name": "t", "id": "tr-b",
                                                 "states": [st.Pending().model_dump(mode="json")]}}  # fmt: skip
    items = [
        create,
        create,  # the same id again: refused by the database, the items around it kept
        {"op": "set_task_run_state", "task_run_id": "tr-b", "body": {"state": st.Running().model_dump(mode="json")}},
        {"op": "write_logs", "body": {"records": [{"flow_run_id": run.id, "message": "kept", "timestamp": now}]}},
    ]
    server = start_in_thread(store)
    try:
        response = httpx.post(f"{server.url}/api/v1/batch", json={"items": items}, timeout=scaled(60),
                              headers={"Authorization": f"Bearer {secret}", "X-Request-Id": "partial-batch"})  # fmt: skip
    finally:
        server.stop()
    results = response.json()["results"]
    assert [("ok" in r, r.get("error", {}).get("code")) for r in results] == [
        (True, None), (False, ObjectAlreadyExists.code), (True, None), (True, None)]  # fmt: skip
    assert [s.type for s in store.read_task_run_states("tr-b")] == [st.StateType.PENDING, st.StateType.RUNNING]
    assert [r.message for r in store.read_logs(flow_run_id=run.id)] == ["kept"]


def test_a_long_poll_claim_holds_no_transaction_while_it_waits(store):
    """A claim waiting for work must not hold the request's transaction (on SQLite, the write
    lock): the run created meanwhile, over HTTP too, is what it wakes up to and claims."""
    _key, secret = store.create_api_key("tx-worker", "admin")
    store.create_work_pool(WorkPool(id="", name="waiting-pool", type="process"))
    server = start_in_thread(store)
    headers = {"Authorization": f"Bearer {secret}"}
    claimed: list[httpx.Response] = []
    try:
        body = {"worker_name": "w", "wait": scaled(60)}
        claim = threading.Thread(target=lambda: claimed.append(httpx.post(
            f"{server.url}/api/v1/work_pools/waiting-pool/claim", json=body, timeout=scaled(120),
            headers={**headers, "X-Request-Id": "claim-1"})))  # fmt: skip
        claim.start()
        wait_until(lambda: server.app.state.fleetflow.in_flight >= 1, "the claim in flight")
        created = httpx.post(f"{server.url}/api/v1/flow_runs", timeout=scaled(60),
                             json={"flow_name": "queued", "work_pool_name": "waiting-pool", "state": st.Scheduled().model_dump(mode="json")},
                             headers={**headers, "X-Request-Id": "create-1"})  # fmt: skip
        assert created.status_code == 201, created.text
        claim.join(timeout=scaled(120))
    finally:
        server.stop()
    assert claimed and claimed[0].status_code == 200, claimed
    assert [r["id"] for r in claimed[0].json()] == [created.json()["id"]]


def test_task_runs_are_not_buffered_inside_a_request(store_url, store):
    """A store with group commit on (as when a server shares it with an embedded client) still
    writes a request's task runs into the request's transaction, not into the buffer."""
    store.enable_group_commit(window=3600.0)
    run = store.create_flow_run("f")
    with request_transaction(store) as tx:
        store.create_task_run(run.id, "k", "t", id="tr-rolled-back", states=[st.Pending()])
        tx.close(commit=False)
    with request_transaction(store) as tx:
        store.create_task_run(run.id, "k", "t", id="tr-committed", states=[st.Pending()])
        assert store.record_request(tx, "k-buffer", 200, None)
        tx.close(commit=True)
    other = Orchestrator.create(store_url)  # sees only what is committed
    try:
        assert [t.id for t in other.read_task_runs(run.id)] == ["tr-committed"]
        store.flush_writes()
        assert [t.id for t in other.read_task_runs(run.id)] == ["tr-committed"]
    finally:
        other.dispose()
