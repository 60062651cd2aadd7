"""The server's auth on a real uvicorn: unauthenticated and under-scoped requests are refused
with clear errors, secrets are shown only to the scopes allowed them, per-run tokens reach
only their run and die with it, failed authentication is rate-limited, mutations are audited
and applied once per request id."""

from __future__ import annotations

import httpx
import pytest

from fleetflow import states as st
from fleetflow.blocks import Block, SecretStr
from fleetflow.client.http import HTTPClient
from fleetflow.exceptions import AuthenticationError, ObjectNotFound, PermissionDenied, RateLimited
from fleetflow.orchestrator import Orchestrator
from fleetflow.orchestrator.schemas import Deployment, WorkPool


class Vault(Block):
    _block_type_slug = "test-vault"
    user: str = "u"
    password: SecretStr | None = None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request, api_server, tmp_path):
    """The session's server in front of a fresh store (SQLite, and PostgreSQL: the team path)."""
    url = f"sqlite:///{tmp_path / 'served.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_server").fresh_database()
    store = Orchestrator.create(url)
    api_server.use_store(store)
    yield api_server, store
    store.dispose()


def _client(server, store, scope: str, name: str | None = None) -> HTTPClient:
    _key, secret = store.create_api_key(name or f"k-{scope}", scope)
    return HTTPClient(server.url, api_key=secret, retry_seconds=0)


def _deployment(admin: HTTPClient, **fields) -> Deployment:
    admin.create_work_pool(WorkPool(id="", name="pool"), overwrite=True)
    return admin.upsert_deployment(Deployment(id="", name="d", flow_name="f", entrypoint="f.py:f", work_pool_name="pool",
                                              **fields))  # fmt: skip


def test_unauthenticated_requests_are_refused_except_health(served):
    server, _store = served
    assert httpx.get(f"{server.url}/api/health").json() == {"status": "ok"}
    anonymous = HTTPClient(server.url, retry_seconds=0)
    with pytest.raises(AuthenticationError) as info:
        anonymous.read_flow_runs()
    assert "FLEETFLOW_API_KEY" in str(info.value)
    response = httpx.get(f"{server.url}/api/ready")
    assert response.status_code == 401 and response.json()["code"] == "authentication_error"


def test_a_read_key_cannot_create_a_run_and_sees_secrets_masked(served):
    server, store = served
    admin, reader = _client(server, store, "admin"), _client(server, store, "read")
    _deployment(admin)
    Vault(password="s3cr3t-value").save("v", client=admin)
    with pytest.raises(PermissionDenied) as info:
        reader.create_flow_run_from_deployment("f/d")
    assert "run (or admin) key" in str(info.value) and "k-read" in str(info.value)
    assert admin.read_flow_runs() == []  # nothing was created
    assert Vault.load("v", client=reader).password.get_secret_value() == "********"
    assert Vault.load("v", client=admin).password.get_secret_value() == "s3cr3t-value"
    worker = _client(server, store, "worker")
    assert Vault.load("v", client=worker).password.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in str(store.read_block_document("test-vault", "v").data)  # sealed at rest


def test_a_run_key_creates_and_cancels_runs_but_cannot_write_other_states(served):
    server, store = served
    admin, runner = _client(server, store, "admin"), _client(server, store, "run")
    _deployment(admin)
    run = runner.create_flow_run_from_deployment("f/d")
    assert runner.set_flow_run_state(run.id, st.State(type=st.StateType.CANCELLING)).state.type is st.StateType.CANCELLING
    with pytest.raises(PermissionDenied):
        runner.set_flow_run_state(run.id, st.Running())
    with pytest.raises(PermissionDenied):
        runner.create_api_key("more", "admin")


def test_a_run_token_reaches_only_its_run_and_dies_with_it(served):
    server, store = served
    admin, worker = _client(server, store, "admin"), _client(server, store, "worker")
    _deployment(admin, storage_block="test-vault/code")
    Vault(password="for-the-run").save("code", client=admin)
    Vault(password="not-for-the-run").save("other", client=admin)
    mine, other = admin.create_flow_run_from_deployment("f/d"), admin.create_flow_run_from_deployment("f/d")
    token = worker.mint_run_token(mine.id)
    as_run = HTTPClient(server.url, api_key=token, retry_seconds=0)
    as_run.set_flow_run_state(mine.id, st.Running())
    task = as_run.create_task_run(mine.id, "t", "t", states=[st.Pending(), st.Running()])
    as_run.set_task_run_state(task.id, st.Completed())
    assert Vault.load("code", client=as_run).password.get_secret_value() == "for-the-run"
    with pytest.raises(PermissionDenied):
        Vault.load("other", client=as_run)
    with pytest.raises(PermissionDenied):
        as_run.set_flow_run_state(other.id, st.Running())
    child = as_run.create_flow_run_from_deployment("f/d", parent_flow_run_id=mine.id, parent_dynamic_key="0")
    assert as_run.read_flow_run(child.id).parent_flow_run_id == mine.id
    as_run.set_flow_run_state(mine.id, st.Completed())
    with pytest.raises(AuthenticationError) as info:
        as_run.read_flow_run(mine.id)
    assert "final" in str(info.value)
    assert "ffr_" not in repr(as_run) and token not in repr(as_run)


def test_revoked_and_unknown_keys_are_refused_and_wrong_secrets_rate_limited(served):
    server, store = served
    admin = _client(server, store, "admin")
    reader_key = store.create_api_key("short-lived", "read")[1]
    reader = HTTPClient(server.url, api_key=reader_key, retry_seconds=0)
    reader.read_work_pools()
    admin.revoke_api_key("short-lived")
    with pytest.raises(AuthenticationError):
        reader.read_work_pools()
    # A client stuck with one wrong key (the revoked reader, polling on) is refused every
    # time but never locks out the address: it is one guess, repeated.
    for _ in range(40):
        with pytest.raises(AuthenticationError):
            reader.read_work_pools()
    assert admin.read_work_pools() == []
    # Different guesses from one address are rate-limited, valid keys from it included.
    for attempt in range(40):
        guess = HTTPClient(server.url, api_key=f"ffk_not-a-key-{attempt}", retry_seconds=0)
        try:
            guess.read_work_pools()
        except RateLimited as exc:
            assert "wait" in str(exc)
            break
        except AuthenticationError:
            continue
    else:
        pytest.fail("failed authentications were never rate-limited")
    assert attempt >= 19  # the revoked key counted once, not 41 times
    with pytest.raises(RateLimited):
        admin.read_work_pools()
    server.use_store(store)  # forgets the failures: later tests share this address


def test_mutations_are_audited_and_applied_once_per_request_id(served):
    server, store = served
    _key, secret = store.create_api_key("auditor", "admin")
    headers = {"Authorization": f"Bearer {secret}", "X-Request-Id": "one-request"}
    first = httpx.post(f"{server.url}/api/v1/flow_runs", json={"flow_name": "f"}, headers=headers)
    again = httpx.post(f"{server.url}/api/v1/flow_runs", json={"flow_name": "f"}, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert again.headers["x-request-replayed"] == "true"
    assert len(store.read_flow_runs()) == 1
    audit = store.read_audit()
    assert {(a["actor"], a["action"], a["status"]) for a in audit} == {("auditor", "POST /api/v1/flow_runs", 201)}


def test_errors_cross_http_as_the_same_classes(served):
    server, store = served
    admin = _client(server, store, "admin")
    with pytest.raises(ObjectNotFound) as info:
        admin.read_flow_run("missing")
    assert info.value.kind == "flow run" and info.value.name == "missing"
    run = admin.create_flow_run("f", state=st.Completed())
    from fleetflow.exceptions import InvalidStateTransition

    with pytest.raises(InvalidStateTransition) as transition:
        admin.set_flow_run_state(run.id, st.Running())
    assert transition.value.current == "COMPLETED"
