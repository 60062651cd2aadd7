"""A deployment's inline (unsaved) infrastructure block keeps its secrets sealed at rest with
the key of whoever stores it -- the server's over HTTP -- and opens them only for workers,
admins and the token of a run of that deployment: ``********`` for a read key, for another
run's token and in every list. So a worker over HTTP can launch it."""

from __future__ import annotations

import pytest

from fleetflow.aws import AwsCredentials, ECSTask
from fleetflow.client.http import HTTPClient
from fleetflow.deployments import Deployment
from fleetflow.orchestrator import Orchestrator
from fleetflow.orchestrator.schemas import FlowRun, WorkPool
from fleetflow.sealing import MASK
from fleetflow.testing import temporary_store
from fleetflow.worker.resolve import resolve_infrastructure
from worker_helpers import load

SECRET = "inline-secret-9r-Zq81"


def _ecs() -> ECSTask:
    return ECSTask(cluster="c", image="img:1", aws_credentials=AwsCredentials(
        aws_access_key_id="AKIAINLINE", aws_secret_access_key=SECRET, region_name="eu-west-1"))


def _secret_of(client, deployment_id: str) -> str:
    deployment = client.read_deployment(deployment_id)
    block = resolve_infrastructure(client, deployment, FlowRun(id="probe", name="probe", flow_name="echo"))
    return block.aws_credentials.aws_secret_access_key.get_secret_value()


@pytest.fixture
def served(api_server, tmp_path):
    url = f"sqlite:///{tmp_path / 'inline.db'}"
    store = Orchestrator.create(url)
    api_server.use_store(store)
    keys = {scope: HTTPClient(api_server.url, api_key=store.create_api_key(f"k-{scope}", scope)[1], retry_seconds=0)
            for scope in ("admin", "worker", "read")}
    yield store, keys, url
    store.dispose()


def _apply(project, name: str, client=None) -> str:
    return Deployment.build_from_flow(load(project, "echo"), name, path=str(project), work_pool_name="pool",
                                      infrastructure=_ecs(), skip_upload=True).apply(client=client)  # fmt: skip


def test_inline_infrastructure_secrets_over_http(served, project):
    store, keys, url = served
    admin, worker, reader = keys["admin"], keys["worker"], keys["read"]
    admin.create_work_pool(WorkPool(id="", name="pool", type="ecs"), overwrite=True)
    deployment_id, other_id = _apply(project, "inline", admin), _apply(project, "other", admin)

    # at rest: sealed with the server's key, never in the clear
    with Orchestrator.create(url).engine.connect() as conn:
        raw = " ".join(str(row[0]) for row in conn.exec_driver_sql("SELECT infrastructure FROM deployments"))
    assert SECRET not in raw and "$fleetflow-secret" in raw

    assert _secret_of(worker, deployment_id) == SECRET  # what a worker over HTTP launches with
    assert _secret_of(admin, deployment_id) == SECRET
    assert _secret_of(reader, deployment_id) == MASK
    assert SECRET not in str([d.model_dump() for d in worker.read_deployments()])

    mine = admin.create_flow_run_from_deployment(deployment_id)
    theirs = admin.create_flow_run_from_deployment(other_id)
    own_token = HTTPClient(admin.base_url, api_key=worker.mint_run_token(mine.id), retry_seconds=0)
    other_token = HTTPClient(admin.base_url, api_key=worker.mint_run_token(theirs.id), retry_seconds=0)
    assert _secret_of(own_token, deployment_id) == SECRET
    assert _secret_of(other_token, deployment_id) == MASK


def test_inline_infrastructure_secrets_embedded(store_url, project):
    with temporary_store(database_url=store_url) as client:
        client.create_work_pool(WorkPool(id="", name="pool", type="ecs"))
        deployment_id = _apply(project, "inline", client)
        with Orchestrator.create(store_url).engine.connect() as conn:
            raw = " ".join(str(row[0]) for row in conn.exec_driver_sql("SELECT infrastructure FROM deployments"))
        assert SECRET not in raw and "$fleetflow-secret" in raw
        assert _secret_of(client, deployment_id) == SECRET
        assert SECRET not in str([d.model_dump() for d in client.read_deployments()])
