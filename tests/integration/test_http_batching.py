"""The HTTP client's deferred run writes (fleetflow.client.batching) against a real server:
task-run creations, state changes and log lines go in batches to ``POST /api/v1/batch``; a
flow run's final state (and every other call) is sent only once they are stored; invalid
transitions still raise at once; a batch is applied once per request id; a batch the server
could not take is re-sent by the next flush; refused items are reported."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from fleetflow import flow, states as st, task
from fleetflow.client.http import HTTPClient
from fleetflow.exceptions import AuthenticationError, InvalidStateTransition, ObjectNotFound, ServerUnavailable
from fleetflow.orchestrator import Orchestrator
from fleetflow.orchestrator.schemas import LogRecord
from fleetflow.testing import temporary_store
from test_http_client_outage import FlakyProxy, behind_proxy  # noqa: F401 - the fixture
from waiting import scaled


@pytest.fixture
def served(api_server, tmp_path):
    store = Orchestrator.create(f"sqlite:///{tmp_path / 'batching.db'}")
    api_server.use_store(store)
    _key, secret = store.create_api_key("batching", "admin")
    yield api_server, store, secret
    store.dispose()


def test_task_run_writes_go_in_batches_and_the_final_state_follows_them(served):
    server, store, secret = served
    client = HTTPClient(server.url, api_key=secret, retry_seconds=0)
    run = client.set_flow_run_state(client.create_flow_run("f").id, st.Running())
    ids = []
    for i in range(40):
        task_run = client.create_task_run(run.id, "k", f"t-{i}", dynamic_key=str(i), states=[st.Pending(), st.Running()])
        assert (task_run.state.type, task_run.run_count) == (st.StateType.RUNNING, 1)
        done = client.set_task_run_state(task_run.id, st.Completed(data={"i": i}))
        assert done.end_time is not None and done.state.type is st.StateType.COMPLETED
        ids.append(task_run.id)
    client.write_logs([LogRecord(flow_run_id=run.id, task_run_id=ids[-1], message="last line", timestamp=st.utcnow())])
    client.set_flow_run_state(run.id, st.Completed())
    # straight from the database: everything before the final state is there
    stored = {t.id: t for t in store.read_task_runs(run.id)}
    assert set(stored) == set(ids)
    assert all(t.state.type is st.StateType.COMPLETED and t.run_count == 1 for t in stored.values())
    assert [s.type for s in store.read_task_run_states(ids[7])] == [
        st.StateType.PENDING, st.StateType.RUNNING, st.StateType.COMPLETED]
    assert store.read_task_run(ids[7]).state.data == {"i": 7}
    assert [r.message for r in store.read_logs(task_run_id=ids[-1])] == ["last line"]
    assert client.requests_sent["POST /api/v1/batch"] >= 1
    assert client.requests_sent["POST /api/v1/task_runs"] == 0 and client.requests_sent["POST /api/v1/logs"] == 0
    assert not any(path.startswith("POST /api/v1/task_runs/") for path in client.requests_sent)
    assert client.deferred_rejections() == []


def test_a_flow_over_http_stores_its_task_runs_before_it_ends(served):
    server, store, secret = served

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def many(n: int) -> int:
        return sum(double(i) for i in range(n)) + sum(f.result() for f in [double.submit(i) for i in range(n)])

    with temporary_store(api_url=server.url, api_key=secret) as client:
        assert many(25) == 2 * 2 * sum(range(25))
        assert client.requests_sent["POST /api/v1/task_runs"] == 0
    # straight from the database, once the flow returned
    (run,) = store.read_flow_runs(flow_name="many")
    assert run.state.type is st.StateType.COMPLETED
    task_runs = store.read_task_runs(run.id)
    assert len(task_runs) == 50 and {t.state.type for t in task_runs} == {st.StateType.COMPLETED}
    assert any("Finished in state Completed" in r.message for r in store.read_logs(task_run_id=task_runs[-1].id))


def test_invalid_transitions_of_deferred_task_runs_still_raise_at_once(served):
    server, store, secret = served
    client = HTTPClient(server.url, api_key=secret, retry_seconds=0)
    run = client.create_flow_run("f")
    with pytest.raises(InvalidStateTransition):
        client.create_task_run(run.id, "k", "bad", states=[st.Completed(), st.Running()])
    task_run = client.create_task_run(run.id, "k", "t", states=[st.Pending(), st.Running()])
    with pytest.raises(InvalidStateTransition, match="RUNNING run cannot move to RUNNING"):
        client.set_task_run_state(task_run.id, st.Running())
    client.set_task_run_state(task_run.id, st.Completed())
    with pytest.raises(InvalidStateTransition, match="final"):
        client.set_task_run_state(task_run.id, st.Running())  # checked by the server, after the flush
    assert [s.type for s in store.read_task_run_states(task_run.id)] == [
        st.StateType.PENDING, st.StateType.RUNNING, st.StateType.COMPLETED]


def test_a_refused_item_is_reported_and_the_others_are_applied(served, capfd):
    server, store, secret = served
    client = HTTPClient(server.url, api_key=secret, retry_seconds=0)
    run = client.create_flow_run("f")
    orphan = client.create_task_run("no-such-flow-run", "k", "orphan")
    kept = client.create_task_run(run.id, "k", "kept")
    client.flush()
    (refused,) = client.deferred_rejections()
    assert isinstance(refused, ObjectNotFound)
    assert f"refused a deferred create_task_run {orphan.id}" in capfd.readouterr().err
    assert [t.id for t in store.read_task_runs(run.id)] == [kept.id]


def test_a_batch_is_applied_once_per_request_id(served):
    server, store, secret = served
    run = store.create_flow_run("f")
    items = [{"op": "create_task_run", "body": {"flow_run_id": run.id, "task_key": "k", "name": "t", "id": "tr-1",
                                                 "states": [st.Pending().model_dump(mode="json")]}},
             {"op": "set_task_run_state", "task_run_id": "tr-1", "body": {"state": st.Running().model_dump(mode="json")}}]
    headers = {"Authorization": f"Bearer {secret}", "X-Request-Id": "batch-1"}
    first = httpx.post(f"{server.url}/api/v1/batch", json={"items": items}, headers=headers)
    again = httpx.post(f"{server.url}/api/v1/batch", json={"items": items}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert [r.get("ok") for r in first.json()["results"]] == [True, True]
    assert again.headers.get("x-request-replayed") == "true" and again.json() == first.json()
    assert [s.type for s in store.read_task_run_states("tr-1")] == [st.StateType.PENDING, st.StateType.RUNNING]


def test_an_undelivered_batch_is_resent_by_the_next_flush(behind_proxy):  # noqa: F811
    proxy, secret, store = behind_proxy
    client = HTTPClient(f"http://127.0.0.1:{proxy.port}", api_key=secret, retry_seconds=0, outage_seconds=0.5)
    run = client.create_flow_run("f")
    proxy.down()
    task_run = client.create_task_run(run.id, "k", "t", states=[st.Pending(), st.Running()])
    client.set_task_run_state(task_run.id, st.Completed())
    with pytest.raises(ServerUnavailable):
        client.flush()
    assert store.read_task_runs(run.id) == []
    proxy.up.set()
    client.outage_seconds = scaled(60)
    client.flush()
    assert [s.type for s in store.read_task_run_states(task_run.id)] == [
        st.StateType.PENDING, st.StateType.RUNNING, st.StateType.COMPLETED]


def test_a_batch_refused_as_a_whole_is_dropped_not_resent_forever(served):
    server, store, _secret = served
    run = store.create_flow_run("f")
    client = HTTPClient(server.url, api_key="ffk_not-a-key", retry_seconds=0)
    client.create_task_run(run.id, "k", "t")  # deferred: nothing sent yet
    # the background sender may meet the refusal first (then this flush has nothing left)
    with contextlib.suppress(AuthenticationError):
        client.flush()
    assert [type(e) for e in client.deferred_rejections()] == [AuthenticationError]
    client.flush()  # nothing left to send
    assert store.read_task_runs(run.id) == []
