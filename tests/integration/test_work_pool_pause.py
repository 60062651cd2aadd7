"""Pausing a work pool: its runs stay SCHEDULED and no worker claims them until it is resumed.
The store on SQLite and PostgreSQL, the client on every backend (embedded and over HTTP), the
server's admin-only route, and a real worker process on a paused pool."""

from __future__ import annotations

import pytest
from waiting import wait_until
from worker_helpers import WorkerProcess, deploy, wait_final

from fleetflow.client.http import HTTPClient
from fleetflow.exceptions import ObjectNotFound, PermissionDenied
from fleetflow.orchestrator import Orchestrator
from fleetflow.orchestrator.schemas import Deployment, WorkPool
from fleetflow.states import StateType, utcnow


def _scheduled_run(store, pool: str = "p") -> str:
    store.create_work_pool(WorkPool(id="", name=pool), overwrite=True)
    dep = store.upsert_deployment(Deployment(id="", name="d", flow_name="f", entrypoint="f.py:f", work_pool_name=pool))
    return store.create_flow_run_from_deployment(dep.id).id


def test_a_paused_pool_keeps_its_runs_scheduled_until_resumed(orchestrator):
    store = orchestrator
    run_id = _scheduled_run(store)
    other = _scheduled_run(store, "other")
    assert store.set_work_pool_paused("p", True).is_paused is True
    assert store.claim_flow_runs("p", "w", limit=10) == []
    assert store.read_flow_run(run_id).state.type is StateType.SCHEDULED
    assert store.read_work_pool("p").last_polled is not None  # the worker still counts as polling
    assert [r.id for r in store.claim_flow_runs("other", "w", limit=10)] == [other]  # other pools unaffected

    store.create_work_pool(WorkPool(id="", name="p", description="new text"), overwrite=True)
    assert store.read_work_pool("p").is_paused is True  # overwriting the definition does not resume it
    assert store.set_work_pool_paused("p", False).is_paused is False
    assert [r.id for r in store.claim_flow_runs("p", "w", limit=10)] == [run_id]
    with pytest.raises(ObjectNotFound, match="No work pool named 'nope'"):
        store.set_work_pool_paused("nope", True)


def test_pause_and_resume_through_the_client(temp_store):
    client = temp_store
    client.create_work_pool(WorkPool(id="", name="cp"))
    assert client.read_work_pool("cp").is_paused is False
    assert client.set_work_pool_paused("cp", True).is_paused is True
    assert [p.is_paused for p in client.read_work_pools()] == [True]
    assert client.set_work_pool_paused("cp", False).is_paused is False
    with pytest.raises(ObjectNotFound):
        client.set_work_pool_paused("missing", True)


def test_only_an_admin_key_may_pause_a_pool_over_http(api_server, tmp_path):
    store = Orchestrator.create(f"sqlite:///{tmp_path / 'served.db'}")
    api_server.use_store(store)
    try:
        store.create_work_pool(WorkPool(id="", name="hp"))
        clients = {scope: HTTPClient(api_server.url, api_key=store.create_api_key(f"k-{scope}", scope)[1], retry_seconds=0)
                   for scope in ("read", "run", "worker", "admin")}  # fmt: skip
        for scope in ("read", "run", "worker"):
            with pytest.raises(PermissionDenied, match="pausing a work pool"):
                clients[scope].set_work_pool_paused("hp", True)
        assert store.read_work_pool("hp").is_paused is False
        assert clients["admin"].set_work_pool_paused("hp", True).is_paused is True
        with pytest.raises(PermissionDenied, match="resuming a work pool"):
            clients["worker"].set_work_pool_paused("hp", False)
        assert clients["read"].read_work_pool("hp").is_paused is True
        for client in clients.values():
            client.close()
    finally:
        store.dispose()


def test_a_worker_on_a_paused_pool_claims_nothing_until_it_is_resumed(temp_store, project):
    import fleetflow.run_deployments as rd
    from fleetflow.deployments import ensure_work_pool, run_deployment

    ensure_work_pool(temp_store, "paused-pool")
    deploy(project, "echo", "held", pool="paused-pool")
    temp_store.set_work_pool_paused("paused-pool", True)
    worker = WorkerProcess("paused-pool", "w-paused")
    try:
        worker.wait_polling(temp_store, "paused-pool")
        rd.reset_no_worker_warnings()
        with pytest.warns(UserWarning, match="work pool 'paused-pool' is paused; .*work-pool resume paused-pool"):
            run = run_deployment("echo/held", parameters={"x": 7}, timeout=0, as_subflow=False)
        created = utcnow()
        # Two polls that began after the run existed found the pool paused (the claim reads
        # the flag in the statement that records the poll): the run is still waiting.
        def polled_since_created() -> bool:
            last = temp_store.read_work_pool("paused-pool").last_polled
            return last is not None and last > created

        wait_until(polled_since_created, "the worker to poll the paused pool")
        seen = temp_store.read_work_pool("paused-pool").last_polled
        wait_until(lambda: temp_store.read_work_pool("paused-pool").last_polled > seen, "a second poll")
        waiting = temp_store.read_flow_run(run.id)
        assert waiting.state.type is StateType.SCHEDULED and waiting.worker_name is None

        temp_store.set_work_pool_paused("paused-pool", False)
        done = wait_final(temp_store, run.id)
        assert done.state.type is StateType.COMPLETED and done.worker_name == "w-paused"
    finally:
        worker.stop()
