"""The work-queue methods of OrchestratorAPI, through the process-wide client on every backend
(embedded SQLite/PostgreSQL, and a real server over HTTP): the same results and errors."""

from __future__ import annotations

import pytest

from fleetflow.exceptions import ObjectAlreadyExists, ObjectNotFound
from fleetflow.orchestrator.schemas import Deployment, WorkPool


def test_work_queues_round_trip_through_the_client(temp_store):
    client = temp_store
    client.create_work_pool(WorkPool(id="", name="pool"))
    made = client.create_work_queue("pool", "urgent", priority=1, concurrency_limit=2, description="now")
    client.create_work_queue("pool", "batch", priority=5)
    assert (made.name, made.priority, made.concurrency_limit) == ("urgent", 1, 2)
    assert [q.name for q in client.read_work_queues("pool")] == ["urgent", "batch"]
    with pytest.raises(ObjectAlreadyExists):
        client.create_work_queue("pool", "urgent")

    paused = client.update_work_queue("pool", "batch", is_paused=True, priority=3)
    assert (paused.is_paused, paused.priority) == (True, 3)
    assert client.read_work_queue("pool", "batch").is_paused is True

    dep = client.upsert_deployment(Deployment(id="", name="d", flow_name="f", entrypoint="x.py:f", work_pool_name="pool"))
    assert client.read_deployment_work_queue(dep.id) == "default"
    client.set_deployment_work_queue(dep.id, "urgent")
    assert client.read_deployment_work_queue(dep.id) == "urgent"
    client.set_deployment_work_queue(dep.id, None)
    assert client.read_deployment_work_queue(dep.id) == "default"

    client.delete_work_queue("pool", "batch")
    with pytest.raises(ObjectNotFound, match="work-queue create batch"):
        client.read_work_queue("pool", "batch")
    assert [q.name for q in client.read_work_queues()] == ["urgent"]
