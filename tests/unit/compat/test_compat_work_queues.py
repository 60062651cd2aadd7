"""Area 10: work queues inside pools: priority, concurrency limit and pause honoured by the
claim, workers limited to queues, the work-queue CLI, and deployments' -q."""

from __future__ import annotations

import pytest

from fleetflow.exceptions import ObjectAlreadyExists, ObjectNotFound
from fleetflow.orchestrator import Orchestrator
from fleetflow.orchestrator.schemas import Deployment, WorkPool
from fleetflow.states import Completed, Running, Scheduled


def _deployment(store: Orchestrator, name: str, queue: str | None) -> str:
    dep = store.upsert_deployment(Deployment(id="", name=name, flow_name="f", entrypoint="x.py:f", work_pool_name="pool"))
    store.set_deployment_work_queue(dep.id, queue)
    return dep.id


def _runs(store: Orchestrator, deployment_id: str | None, n: int) -> list[str]:
    return [store.create_flow_run("f", state=Scheduled(), work_pool_name="pool", deployment_id=deployment_id).id
            for _ in range(n)]


@pytest.fixture
def pool(orchestrator: Orchestrator) -> Orchestrator:
    orchestrator.create_work_pool(WorkPool(id="", name="pool"))
    return orchestrator


def test_priority_then_age(pool):
    pool.create_work_queue("pool", "urgent", priority=1)
    pool.create_work_queue("pool", "batch", priority=5)
    batch = _runs(pool, _deployment(pool, "b", "batch"), 2)  # older
    urgent = _runs(pool, _deployment(pool, "u", "urgent"), 2)
    claimed = [r.id for r in pool.claim_flow_runs("pool", "w", limit=3)]
    assert claimed == urgent + batch[:1]


def test_paused_queue_is_not_claimed_until_resumed(pool):
    pool.create_work_queue("pool", "hold")
    held = _runs(pool, _deployment(pool, "h", "hold"), 1)
    pool.update_work_queue("pool", "hold", is_paused=True)
    free = _runs(pool, None, 1)  # the default queue
    assert [r.id for r in pool.claim_flow_runs("pool", "w")] == free
    assert pool.claim_flow_runs("pool", "w") == []
    pool.update_work_queue("pool", "hold", is_paused=False)
    assert [r.id for r in pool.claim_flow_runs("pool", "w")] == held


def test_queue_concurrency_limit_counts_active_runs(pool):
    pool.create_work_queue("pool", "two", concurrency_limit=2)
    runs = _runs(pool, _deployment(pool, "t", "two"), 4)
    first = pool.claim_flow_runs("pool", "w", limit=10)
    assert [r.id for r in first] == runs[:2]
    assert pool.claim_flow_runs("pool", "w") == []  # two PENDING runs fill the queue
    pool.set_flow_run_state(first[0].id, Running())
    pool.set_flow_run_state(first[0].id, Completed())
    assert [r.id for r in pool.claim_flow_runs("pool", "w")] == runs[2:3]


def test_workers_limited_to_queues(pool):
    dev = _runs(pool, _deployment(pool, "d", "dev"), 1)  # a queue never created: behaves as unlimited
    default = _runs(pool, None, 1)
    assert [r.id for r in pool.claim_flow_runs("pool", "w", queues=["dev"])] == dev
    assert pool.claim_flow_runs("pool", "w", queues=["dev"]) == []
    assert [r.id for r in pool.claim_flow_runs("pool", "w", queues=["default"])] == default


def test_queue_crud_errors(pool):
    pool.create_work_queue("pool", "q")
    with pytest.raises(ObjectAlreadyExists):
        pool.create_work_queue("pool", "q")
    with pytest.raises(ObjectNotFound, match="work-queue create nope -p pool"):
        pool.update_work_queue("pool", "nope", is_paused=True)
    assert [q.name for q in pool.read_work_queues("pool")] == ["q"]
    pool.delete_work_queue("pool", "q")
    assert pool.read_work_queues("pool") == []


def test_work_queue_cli_and_deployment_queue(temp_store, tmp_path, monkeypatch):
    from compat_cli import invoke

    (tmp_path / "flows.py").write_text("from fleetflow import flow\n\n@flow\ndef f():\n    return 1\n")
    monkeypatch.chdir(tmp_path)
    assert invoke("work-queue", "create", "critical", "-p", "ml", "--priority", "1", "--limit", "3").exit_code == 0
    listing = invoke("work-queue", "ls", "-p", "ml").stdout
    assert "critical" in listing and "3" in listing
    assert invoke("work-queue", "pause", "critical", "-p", "ml").exit_code == 0
    assert temp_store.read_work_queue("ml", "critical").is_paused is True
    assert invoke("work-queue", "resume", "critical", "-p", "ml").exit_code == 0
    assert temp_store.read_work_queue("ml", "critical").is_paused is False
    built = invoke("deployment", "build", "flows.py:f", "-n", "d", "-p", "ml", "-q", "critical", "--skip-upload", "-a")
    assert built.exit_code == 0, built.output
    dep = temp_store.read_deployment_by_name("f/d")
    assert dep.work_pool_name == "ml" and temp_store.read_deployment_work_queue(dep.id) == "critical"
    auto = invoke("deployment", "build", "flows.py:f", "-n", "e", "-p", "ml", "-q", "fresh", "--skip-upload", "-a")
    assert auto.exit_code == 0 and temp_store.read_work_queue("ml", "fresh").priority == 1  # created on first use
