"""The Orchestrator's contract, on every backend (``store_url`` is parametrised: SQLite and a
real PostgreSQL server)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from fleetflow.exceptions import (
    BlockNotFound,
    ConfigurationError,
    InvalidStateTransition,
    ObjectAlreadyExists,
    ObjectNotFound,
)
from fleetflow.orchestrator import Deployment, LogRecord, Orchestrator, WorkPool
from fleetflow.states import Cancelled, Completed, Failed, Pending, Running, Scheduled, StateType

UTC = dt.timezone.utc


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


# ---- flow runs ------------------------------------------------------------------------------
def test_create_and_read_flow_run(orchestrator: Orchestrator):
    run = orchestrator.create_flow_run(
        "etl", parameters={"n": 1, "when": dt.date(2024, 1, 2)}, tags=("a", "b"), infra_overrides={"cpu": 1024}
    )
    assert run.state.type is StateType.PENDING
    assert run.name and run.flow_name == "etl"
    assert run.created.tzinfo is not None and run.created.utcoffset() == dt.timedelta(0)
    again = orchestrator.read_flow_run(run.id)
    assert again == run
    assert again.parameters == {"n": 1, "when": "2024-01-02"}
    assert again.tags == ["a", "b"] and again.infra_overrides == {"cpu": 1024}
    assert again.run_count == 0 and again.start_time is None


def test_read_missing_flow_run(orchestrator: Orchestrator):
    with pytest.raises(ObjectNotFound) as info:
        orchestrator.read_flow_run("nope")
    assert info.value.kind == "flow run" and "nope" in str(info.value)


def test_given_id_and_duplicate_id(orchestrator: Orchestrator):
    run = orchestrator.create_flow_run("f", id="11111111-1111-1111-1111-111111111111")
    assert run.id == "11111111-1111-1111-1111-111111111111"
    with pytest.raises(ObjectAlreadyExists):
        orchestrator.create_flow_run("f", id=run.id)


def test_idempotency_key_returns_the_same_run(orchestrator: Orchestrator):
    first = orchestrator.create_flow_run("f", deployment_id="d1", idempotency_key="k", state=Scheduled())
    again = orchestrator.create_flow_run("f", deployment_id="d1", idempotency_key="k", parameters={"x": 2})
    other_deployment = orchestrator.create_flow_run("f", deployment_id="d2", idempotency_key="k")
    assert again.id == first.id and again.state.type is StateType.SCHEDULED
    assert other_deployment.id != first.id
    assert len(orchestrator.read_flow_runs(flow_name="f")) == 2


def test_idempotency_key_under_concurrency(orchestrator: Orchestrator):
    ids: list[str] = []

    def create() -> None:
        ids.append(orchestrator.create_flow_run("f", deployment_id="d", idempotency_key="same").id)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(set(ids)) == 1 and len(ids) == 8


def test_transitions_times_and_history(orchestrator: Orchestrator):
    run = orchestrator.create_flow_run("f", state=Scheduled())
    orchestrator.set_flow_run_state(run.id, Pending())
    running = orchestrator.set_flow_run_state(run.id, Running())
    assert running.run_count == 1 and running.start_time is not None and running.end_time is None
    orchestrator.set_flow_run_state(run.id, Scheduled(name="AwaitingRetry"))
    retrying = orchestrator.set_flow_run_state(run.id, Running(name="Retrying"))
    assert retrying.run_count == 2 and retrying.start_time == running.start_time
    done = orchestrator.set_flow_run_state(run.id, Completed(message="ok", data={"result": {"key": "abc"}}))
    assert done.state.type is StateType.COMPLETED and done.state.message == "ok"
    assert done.state.data == {"result": {"key": "abc"}}
    assert done.end_time is not None and done.end_time >= done.start_time
    names = [s.name for s in orchestrator.read_flow_run_states(run.id)]
    assert names == ["Scheduled", "Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    assert orchestrator.read_flow_run(run.id) == done


def test_invalid_transition_reports_current_state(orchestrator: Orchestrator):
    run = orchestrator.create_flow_run("f", state=Running())
    orchestrator.set_flow_run_state(run.id, Completed())
    with pytest.raises(InvalidStateTransition) as info:
        orchestrator.set_flow_run_state(run.id, Running())
    assert info.value.current == "COMPLETED" and info.value.proposed == "RUNNING"
    assert "COMPLETED" in str(info.value)
    # nothing was written
    assert orchestrator.read_flow_run(run.id).state.type is StateType.COMPLETED
    assert len(orchestrator.read_flow_run_states(run.id)) == 2
    forced = orchestrator.set_flow_run_state(run.id, Running(), force=True)
    assert forced.state.type is StateType.RUNNING and forced.run_count == 2


def test_non_terminal_invalid_transition(orchestrator: Orchestrator):
    run = orchestrator.create_flow_run("f", state=Scheduled())
    with pytest.raises(InvalidStateTransition) as info:
        orchestrator.set_flow_run_state(run.id, Completed())
    assert info.value.current == "SCHEDULED"


def test_transition_of_missing_run(orchestrator: Orchestrator):
    with pytest.raises(ObjectNotFound):
        orchestrator.set_flow_run_state("missing", Running())
    with pytest.raises(ObjectNotFound):
        orchestrator.read_flow_run_states("missing")


def test_concurrent_transitions_only_one_wins(orchestrator: Orchestrator):
    """Many threads race RUNNING -> COMPLETED/FAILED: exactly one final state is recorded."""
    run = orchestrator.create_flow_run("f", state=Running())
    outcomes: list[str] = []

    def finish(state_factory) -> None:
        try:
            orchestrator.set_flow_run_state(run.id, state_factory())
            outcomes.append("ok")
        except InvalidStateTransition:
            outcomes.append("rejected")

    threads = [threading.Thread(target=finish, args=(f,)) for f in [Completed, Failed, Cancelled] * 4]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert outcomes.count("ok") == 1 and outcomes.count("rejected") == 11
    assert len(orchestrator.read_flow_run_states(run.id)) == 2


def test_read_flow_runs_filters_newest_first(orchestrator: Orchestrator):
    a = orchestrator.create_flow_run("a", work_pool_name="p", state=Scheduled())
    b = orchestrator.create_flow_run("b", deployment_id="d")
    c = orchestrator.create_flow_run("a", state=Running())
    assert [r.id for r in orchestrator.read_flow_runs()] == [c.id, b.id, a.id]
    assert [r.id for r in orchestrator.read_flow_runs(flow_name="a")] == [c.id, a.id]
    assert [r.id for r in orchestrator.read_flow_runs(state_types=[StateType.SCHEDULED])] == [a.id]
    assert [r.id for r in orchestrator.read_flow_runs(deployment_id="d")] == [b.id]
    assert [r.id for r in orchestrator.read_flow_runs(work_pool_name="p")] == [a.id]
    assert len(orchestrator.read_flow_runs(limit=2)) == 2
    assert orchestrator.read_flow_runs(state_types=[]) == []


def test_subflow_links_parent(orchestrator: Orchestrator):
    parent = orchestrator.create_flow_run("parent", state=Running())
    task = orchestrator.create_task_run(parent.id, "parent.child", "child-0", states=[Pending(), Running()])
    child = orchestrator.create_flow_run("child", parent_task_run_id=task.id)
    assert child.parent_flow_run_id == parent.id and child.parent_task_run_id == task.id
    assert [r.id for r in orchestrator.read_flow_runs(parent_flow_run_id=parent.id)] == [child.id]


def test_update_flow_run(orchestrator: Orchestrator):
    run = orchestrator.create_flow_run("f")
    updated = orchestrator.update_flow_run(
        run.id, infrastructure_pid="process:host:123", infrastructure={"kind": "process"}, worker_name="w", tags=["x"]
    )
    assert updated.infrastructure_pid == "process:host:123" and updated.infrastructure == {"kind": "process"}
    assert updated.worker_name == "w" and updated.tags == ["x"]
    assert orchestrator.update_flow_run(run.id) == updated
    with pytest.raises(ConfigurationError) as info:
        orchestrator.update_flow_run(run.id, state_type="COMPLETED")
    assert "set_flow_run_state" in str(info.value)
    with pytest.raises(ObjectNotFound):
        orchestrator.update_flow_run("missing", name="x")


def test_delete_flow_run_removes_everything(orchestrator: Orchestrator):
    run = orchestrator.create_flow_run("f", state=Running())
    task = orchestrator.create_task_run(run.id, "t", "t-0")
    orchestrator.write_logs([LogRecord(flow_run_id=run.id, message="hi", timestamp=now())])
    orchestrator.write_logs([LogRecord(task_run_id=task.id, message="task", timestamp=now())])
    keep = orchestrator.create_flow_run("other")
    orchestrator.delete_flow_run(run.id)
    with pytest.raises(ObjectNotFound):
        orchestrator.read_flow_run(run.id)
    with pytest.raises(ObjectNotFound):
        orchestrator.read_task_run(task.id)
    assert orchestrator.read_logs() == []
    assert orchestrator.read_flow_run(keep.id)
    with pytest.raises(ObjectNotFound):
        orchestrator.delete_flow_run(run.id)


# ---- claims ---------------------------------------------------------------------------------
def test_claim_due_runs_oldest_first(orchestrator: Orchestrator):
    orchestrator.create_work_pool(WorkPool(id="", name="pool"))
    t0 = now()
    late = orchestrator.create_flow_run("f", state=Scheduled(), work_pool_name="pool", expected_start_time=t0 - dt.timedelta(seconds=10))
    early = orchestrator.create_flow_run("f", state=Scheduled(), work_pool_name="pool", expected_start_time=t0 - dt.timedelta(seconds=60))
    future = orchestrator.create_flow_run("f", state=Scheduled(), work_pool_name="pool", expected_start_time=t0 + dt.timedelta(hours=1))
    orchestrator.create_flow_run("f", state=Scheduled(), work_pool_name="other")
    orchestrator.create_flow_run("f", state=Pending(), work_pool_name="pool")
    first = orchestrator.claim_flow_runs("pool", "w1", limit=1)
    assert [r.id for r in first] == [early.id]
    assert first[0].state.type is StateType.PENDING and first[0].worker_name == "w1"
    assert "w1" in first[0].state.message
    second = orchestrator.claim_flow_runs("pool", "w2")
    assert [r.id for r in second] == [late.id]
    assert orchestrator.claim_flow_runs("pool", "w3") == []
    assert orchestrator.read_flow_run(future.id).state.type is StateType.SCHEDULED
    assert [s.type for s in orchestrator.read_flow_run_states(early.id)] == [StateType.SCHEDULED, StateType.PENDING]
    polled = orchestrator.read_work_pool("pool").last_polled
    assert polled is not None and polled >= t0


def test_claim_respects_pool_concurrency_limit(orchestrator: Orchestrator):
    orchestrator.create_work_pool(WorkPool(id="", name="pool", concurrency_limit=2))
    runs = [orchestrator.create_flow_run("f", state=Scheduled(), work_pool_name="pool") for _ in range(4)]
    assert len(orchestrator.claim_flow_runs("pool", "w", limit=10)) == 2
    assert orchestrator.claim_flow_runs("pool", "w") == []
    claimed = [r for r in orchestrator.read_flow_runs(work_pool_name="pool") if r.state.type is StateType.PENDING]
    orchestrator.set_flow_run_state(claimed[0].id, Running())
    orchestrator.set_flow_run_state(claimed[0].id, Completed())
    assert len(orchestrator.claim_flow_runs("pool", "w")) == 1
    assert len(runs) == 4


def test_claim_from_threads_is_exactly_once(orchestrator: Orchestrator):
    ids = {orchestrator.create_flow_run("f", state=Scheduled(), work_pool_name="p").id for _ in range(60)}
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            got = orchestrator.claim_flow_runs("p", name, limit=3)
            if not got:
                return
            with lock:
                claimed.extend(r.id for r in got)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(claimed) == sorted(ids)


# ---- task runs ------------------------------------------------------------------------------
def test_task_run_lifecycle(orchestrator: Orchestrator):
    run = orchestrator.create_flow_run("f", state=Running())
    task = orchestrator.create_task_run(run.id, "mod.add", "add-0", dynamic_key="0", cache_key="ck", states=[Pending(), Running()])
    assert task.state.type is StateType.RUNNING and task.run_count == 1 and task.start_time is not None
    assert task.cache_key == "ck" and task.flow_run_id == run.id
    assert orchestrator.read_task_run(task.id) == task
    done = orchestrator.set_task_run_state(task.id, Completed(data={"value": 3}))
    assert done.state.data == {"value": 3} and done.end_time is not None
    assert [s.type for s in orchestrator.read_task_run_states(task.id)] == [
        StateType.PENDING, StateType.RUNNING, StateType.COMPLETED,
    ]  # fmt: skip
    with pytest.raises(InvalidStateTransition) as info:
        orchestrator.set_task_run_state(task.id, Running())
    assert info.value.current == "COMPLETED"


def test_task_run_defaults_and_order(orchestrator: Orchestrator):
    run = orchestrator.create_flow_run("f", state=Running())
    tasks = [orchestrator.create_task_run(run.id, "k", f"t-{i}", dynamic_key=str(i)) for i in range(5)]
    assert all(t.state.type is StateType.PENDING and t.run_count == 0 for t in tasks)
    assert [t.id for t in orchestrator.read_task_runs(run.id)] == [t.id for t in tasks]
    assert orchestrator.read_task_runs("other") == []


def test_task_run_errors(orchestrator: Orchestrator):
    with pytest.raises(ObjectNotFound):
        orchestrator.create_task_run("missing-flow-run", "k", "t")
    with pytest.raises(ObjectNotFound):
        orchestrator.read_task_run("missing")
    with pytest.raises(ObjectNotFound):
        orchestrator.set_task_run_state("missing", Completed())
    run = orchestrator.create_flow_run("f")
    with pytest.raises(InvalidStateTransition):
        orchestrator.create_task_run(run.id, "k", "t", states=[Completed(), Running()])


def test_task_runs_from_many_threads(orchestrator: Orchestrator):
    run = orchestrator.create_flow_run("f", state=Running())
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(25):
                task = orchestrator.create_task_run(run.id, "k", "t", dynamic_key=f"{offset}-{i}", states=[Pending(), Running()])
                orchestrator.set_task_run_state(task.id, Completed())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    task_runs = orchestrator.read_task_runs(run.id)
    assert len(task_runs) == 200 and all(t.state.type is StateType.COMPLETED for t in task_runs)


def test_timestamps_are_utc_whatever_zone_goes_in(orchestrator: Orchestrator):
    zone = dt.timezone(dt.timedelta(hours=5, minutes=30))
    local = dt.datetime(2024, 5, 1, 12, 0, tzinfo=zone)
    run = orchestrator.create_flow_run("f", state=Scheduled(timestamp=local), expected_start_time=local)
    stored = orchestrator.read_flow_run(run.id)
    assert stored.expected_start_time == local and stored.expected_start_time.tzinfo == UTC
    assert stored.state.timestamp == local and stored.state.timestamp.tzinfo == UTC


# ---- logs and cache -------------------------------------------------------------------------
def test_logs_write_read_and_tail(orchestrator: Orchestrator):
    run = orchestrator.create_flow_run("f")
    orchestrator.write_logs([])
    orchestrator.write_logs(
        [LogRecord(flow_run_id=run.id, level=20, name="fleetflow.flow", message=f"line {i}", timestamp=now()) for i in range(5)]
    )
    orchestrator.write_logs([LogRecord(flow_run_id="other", message="elsewhere", timestamp=now())])
    orchestrator.write_logs([LogRecord(flow_run_id=run.id, task_run_id="t1", level=40, message="task", timestamp=now())])
    logs = orchestrator.read_logs(flow_run_id=run.id)
    assert [r.message for r in logs] == [f"line {i}" for i in range(5)] + ["task"]
    assert all(r.id is not None for r in logs) and logs[0].timestamp.tzinfo == UTC
    tail = orchestrator.read_logs(flow_run_id=run.id, after_id=logs[2].id, limit=2)
    assert [r.message for r in tail] == ["line 3", "line 4"]
    assert [r.level for r in orchestrator.read_logs(task_run_id="t1")] == [40]
    assert len(orchestrator.read_logs()) == 7


def test_cache_write_read_expire_overwrite(orchestrator: Orchestrator):
    assert orchestrator.read_cache("k") is None
    orchestrator.write_cache("k", {"path": "a"}, None)
    assert orchestrator.read_cache("k") == {"path": "a"}
    orchestrator.write_cache("k", {"path": "b"}, now() + dt.timedelta(hours=1))
    assert orchestrator.read_cache("k") == {"path": "b"}
    orchestrator.write_cache("k", {"path": "c"}, now() - dt.timedelta(seconds=1))
    assert orchestrator.read_cache("k") is None


# ---- blocks ---------------------------------------------------------------------------------
def test_blocks_save_read_overwrite(orchestrator: Orchestrator):
    saved = orchestrator.save_block_document("s3", "data", {"bucket_path": "b/p"})
    assert saved.id and saved.created and saved.schema_version == 1
    assert orchestrator.read_block_document("s3", "data").data == {"bucket_path": "b/p"}
    with pytest.raises(ObjectAlreadyExists) as info:
        orchestrator.save_block_document("s3", "data", {"bucket_path": "x"})
    assert "overwrite=True" in str(info.value)
    replaced = orchestrator.save_block_document("s3", "data", {"bucket_path": "x"}, schema_version=2, overwrite=True)
    assert replaced.id == saved.id and replaced.created == saved.created and replaced.updated >= saved.updated
    assert replaced.data == {"bucket_path": "x"} and replaced.schema_version == 2
    orchestrator.save_block_document("s3", "logs", {})
    orchestrator.save_block_document("process", "local", {})
    assert [b.name for b in orchestrator.read_block_documents("s3")] == ["data", "logs"]
    assert len(orchestrator.read_block_documents()) == 3
    orchestrator.delete_block_document("s3", "logs")
    with pytest.raises(BlockNotFound):
        orchestrator.delete_block_document("s3", "logs")


def test_unknown_block_lists_existing_names(orchestrator: Orchestrator):
    with pytest.raises(BlockNotFound) as info:
        orchestrator.read_block_document("ecs-task", "gpu")
    assert "no 'ecs-task' blocks yet" in str(info.value) and ".save('gpu')" in str(info.value)
    orchestrator.save_block_document("ecs-task", "gpu-large", {})
    orchestrator.save_block_document("ecs-task", "cpu", {})
    orchestrator.save_block_document("s3", "gpu", {})
    with pytest.raises(ObjectNotFound) as info:
        orchestrator.read_block_document("ecs-task", "gpu")
    message = str(info.value)
    assert "'cpu'" in message and "'gpu-large'" in message and "Did you mean 'gpu-large'" in message
    assert info.value.name == "gpu"


# ---- deployments ----------------------------------------------------------------------------
def _deployment(**kw) -> Deployment:
    base = dict(id="", name="train-gpu", flow_name="train", entrypoint="flows.py:train", work_pool_name="ecs")
    return Deployment(**{**base, **kw})


def test_deployment_upsert_keeps_id(orchestrator: Orchestrator):
    first = orchestrator.upsert_deployment(_deployment(parameters={"epochs": 1}, schedule={"cron": "0 * * * *"}))
    assert first.id and first.full_name == "train/train-gpu" and first.schedule == {"cron": "0 * * * *"}
    second = orchestrator.upsert_deployment(_deployment(parameters={"epochs": 2}, infra_overrides={"cpu": 2048}))
    assert second.id == first.id and second.created == first.created
    assert second.parameters == {"epochs": 2} and second.infra_overrides == {"cpu": 2048} and second.schedule is None
    assert orchestrator.read_deployment(first.id) == second
    assert orchestrator.read_deployment_by_name("train/train-gpu") == second
    given = orchestrator.upsert_deployment(_deployment(id="my-id", name="other"))
    assert given.id == "my-id"
    with pytest.raises(ObjectAlreadyExists):
        orchestrator.upsert_deployment(_deployment(id="my-id", name="third"))


def test_unknown_deployment_messages(orchestrator: Orchestrator):
    with pytest.raises(ObjectNotFound) as info:
        orchestrator.read_deployment_by_name("train/train-gpu")
    assert "no deployments yet" in str(info.value) and "apply()" in str(info.value)
    orchestrator.upsert_deployment(_deployment())
    orchestrator.upsert_deployment(_deployment(name="train-cpu"))
    with pytest.raises(ObjectNotFound) as info:
        orchestrator.read_deployment_by_name("train/train-gpy")
    assert "Did you mean 'train/train-gpu'" in str(info.value) and "'train/train-cpu'" in str(info.value)
    with pytest.raises(ObjectNotFound) as info:
        orchestrator.read_deployment_by_name("train-gpu")
    assert "'flow-name/deployment-name'" in str(info.value) and "'train/train-gpu'" in str(info.value)
    with pytest.raises(ObjectNotFound):
        orchestrator.read_deployment("missing")


def test_read_and_delete_deployments(orchestrator: Orchestrator):
    a = orchestrator.upsert_deployment(_deployment())
    orchestrator.upsert_deployment(_deployment(flow_name="etl", name="daily", work_pool_name="local"))
    assert [d.full_name for d in orchestrator.read_deployments()] == ["etl/daily", "train/train-gpu"]
    assert [d.full_name for d in orchestrator.read_deployments(flow_name="train")] == ["train/train-gpu"]
    assert [d.full_name for d in orchestrator.read_deployments(work_pool_name="local")] == ["etl/daily"]
    orchestrator.delete_deployment(a.id)
    with pytest.raises(ObjectNotFound):
        orchestrator.delete_deployment(a.id)
    assert len(orchestrator.read_deployments()) == 1


# ---- pools and workers ----------------------------------------------------------------------
def test_work_pools(orchestrator: Orchestrator):
    pool = orchestrator.create_work_pool(WorkPool(id="", name="ecs", type="ecs", infrastructure_block="ecs-task/gpu"))
    assert pool.id and pool.created and pool.last_polled is None
    with pytest.raises(ObjectAlreadyExists):
        orchestrator.create_work_pool(WorkPool(id="", name="ecs"))
    replaced = orchestrator.create_work_pool(WorkPool(id="", name="ecs", type="ecs", concurrency_limit=3), overwrite=True)
    assert replaced.id == pool.id and replaced.concurrency_limit == 3 and replaced.infrastructure_block is None
    orchestrator.create_work_pool(WorkPool(id="", name="local"))
    assert [p.name for p in orchestrator.read_work_pools()] == ["ecs", "local"]
    with pytest.raises(ObjectNotFound) as info:
        orchestrator.read_work_pool("ec")
    assert "Did you mean 'ecs'" in str(info.value)
    orchestrator.delete_work_pool("local")
    with pytest.raises(ObjectNotFound):
        orchestrator.delete_work_pool("local")


def test_worker_heartbeats(orchestrator: Orchestrator):
    orchestrator.create_work_pool(WorkPool(id="", name="p"))
    orchestrator.worker_heartbeat("p", "w1", hostname="h", pid=1)
    first = orchestrator.read_workers("p")[0]
    orchestrator.worker_heartbeat("p", "w1", hostname="h", pid=2)
    orchestrator.worker_heartbeat("p", "w2")
    workers = orchestrator.read_workers("p")
    assert [(w.name, w.pid) for w in workers] == [("w1", 2), ("w2", None)]
    assert workers[0].last_heartbeat >= first.last_heartbeat and workers[0].last_heartbeat.tzinfo == UTC
    assert orchestrator.read_workers("other") == []
    orchestrator.delete_work_pool("p")
    assert orchestrator.read_workers("p") == []


def test_two_instances_on_one_store_write_from_threads(orchestrator: Orchestrator, store_url: str):
    """The engine, a log shipper and user code may each hold their own Orchestrator."""
    other = Orchestrator.create(store_url)
    run = orchestrator.create_flow_run("f", state=Running())
    errors: list[BaseException] = []

    def work(store: Orchestrator, offset: int) -> None:
        try:
            for i in range(20):
                task = store.create_task_run(run.id, "k", "t", dynamic_key=f"{offset}-{i}", states=[Pending(), Running()])
                store.set_task_run_state(task.id, Completed())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(store, n)) for n, store in enumerate([orchestrator, other] * 3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    other.dispose()
    assert errors == [] and len(orchestrator.read_task_runs(run.id)) == 120


def test_sqlite_path_with_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    store = Orchestrator.create("sqlite:///~/sub/store.db")
    store.create_flow_run("f")
    store.dispose()
    assert (tmp_path / "sub" / "store.db").exists()
