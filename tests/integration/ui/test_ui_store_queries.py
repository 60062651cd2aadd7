"""The store queries behind the UI's lists, on SQLite and PostgreSQL: the tag filter, the last
runs of many deployments in one query, child counts and filtered log pages."""

from __future__ import annotations

from fleetflow.orchestrator.schemas import Deployment, LogRecord, WorkPool
from fleetflow.states import State, StateType, utcnow


def test_tag_filter_matches_whole_tags_only(orchestrator):
    store = orchestrator
    a = store.create_flow_run("f", tags=["gpu", "nightly"])
    store.create_flow_run("f", tags=["gpu-small"])
    store.create_flow_run("f", tags=['quo"te'])
    assert [r.id for r in store.browse_flow_runs(tag="nightly")] == [a.id]
    assert [r.id for r in store.browse_flow_runs(tag="gpu")] == [a.id]
    assert len(store.browse_flow_runs(tag='quo"te')) == 1 and store.browse_flow_runs(tag="%") == []
    assert store.count_browsed_flow_runs(tag="gpu") == 1 and store.count_browsed_flow_runs(limit=2) == 2


def test_browse_pages_by_keyset_like_read_flow_runs(orchestrator):
    from fleetflow.orchestrator.runs import page_cursor

    ids = [orchestrator.create_flow_run("f").id for _ in range(5)]
    first = orchestrator.browse_flow_runs(limit=3)
    rest = orchestrator.browse_flow_runs(limit=3, cursor=page_cursor(first[-1]))
    assert [r.id for r in first + rest] == ids[::-1]


def test_recent_runs_of_deployments_are_the_newest_per_deployment(orchestrator):
    store = orchestrator
    store.create_work_pool(WorkPool(id="", name="p"))
    deps = [store.upsert_deployment(Deployment(id="", name=f"d{i}", flow_name="f", entrypoint="f.py:f", work_pool_name="p"))
            for i in range(3)]  # fmt: skip
    made = {d.id: [store.create_flow_run_from_deployment(d.id, idempotency_key=str(k)).id for k in range(4)] for d in deps[:2]}
    recent = store.recent_runs_of_deployments([d.id for d in deps], per=3)
    assert [r.id for r in recent[deps[0].id]] == made[deps[0].id][:0:-1]
    assert [r.id for r in recent[deps[1].id]] == made[deps[1].id][:0:-1]
    assert recent[deps[2].id] == [] and store.recent_runs_of_deployments([]) == {}


def test_child_counts_and_log_search(orchestrator):
    store = orchestrator
    parent = store.create_flow_run("p")
    store.create_work_pool(WorkPool(id="", name="p"))
    dep = store.upsert_deployment(Deployment(id="", name="c", flow_name="c", entrypoint="c.py:c", work_pool_name="p"))
    for key in ("a", "b"):
        store.create_flow_run_from_deployment(dep.id, parent_flow_run_id=parent.id, parent_dynamic_key=key)
    assert store.count_children([parent.id, "nobody"]) == {parent.id: 2}
    tasks = [store.create_task_run(parent.id, "k", f"t{i}").id for i in range(3)]
    store.set_task_run_state(tasks[1], State(type=StateType.RUNNING, message="go"))
    rows = store.browse_task_runs(parent.id)
    assert [r.id for r in rows] == [t.id for t in store.read_task_runs(parent.id)]
    running = next(r for r in rows if r.id == tasks[1])
    assert running.state.type is StateType.RUNNING and running.state.message == "go" and running.start_time is not None
    lines = [(10, "debug 1"), (20, "Loaded 100% of rows"), (40, "failed row 7"), (20, "done")]
    store.write_logs([LogRecord(flow_run_id=parent.id, level=lv, message=m, timestamp=utcnow()) for lv, m in lines])
    assert [r.message for r in store.search_logs(parent.id, min_level=20)] == ["Loaded 100% of rows", "failed row 7", "done"]
    assert [r.message for r in store.search_logs(parent.id, text="100%")] == ["Loaded 100% of rows"]  # % is literal
    assert [r.message for r in store.search_logs(parent.id, text="ROW")] == ["Loaded 100% of rows", "failed row 7"]
    assert [r.message for r in store.search_logs(parent.id, limit=2, latest=True)] == ["failed row 7", "done"]


def test_recent_runs_of_deployments_filtered_by_state(orchestrator):
    store = orchestrator
    store.create_work_pool(WorkPool(id="", name="p"))
    deps = [store.upsert_deployment(Deployment(id="", name=f"d{i}", flow_name="f", entrypoint="f.py:f", work_pool_name="p"))
            for i in range(2)]  # fmt: skip
    done = []
    for k in range(4):
        run = store.create_flow_run_from_deployment(deps[0].id, idempotency_key=str(k))
        if k % 2 == 0:
            for state in (StateType.PENDING, StateType.RUNNING, StateType.COMPLETED):
                store.set_flow_run_state(run.id, State(type=state))
            done.append(run.id)
    found = store.recent_runs_of_deployments([d.id for d in deps], per=5, state_types=[StateType.COMPLETED])
    assert [r.id for r in found[deps[0].id]] == done[::-1] and found[deps[1].id] == []
    mark = found[deps[0].id][0]  # a light row, carrying what the marks and the badges read
    assert mark.state_type is StateType.COMPLETED and mark.state.type is StateType.COMPLETED
    assert mark.deployment_id == deps[0].id and mark.name == store.read_flow_run(mark.id).name
    assert mark.created == store.read_flow_run(mark.id).created and isinstance(mark.infrastructure, dict)
    assert len(store.recent_runs_of_deployments([deps[0].id], per=5)[deps[0].id]) == 4


def test_deployment_badges_in_one_pass_are_the_badges_of_each_deployment(orchestrator):
    from fleetflow.usage.advice import deployment_badge, deployment_badges

    store = orchestrator
    store.create_work_pool(WorkPool(id="", name="p"))

    def deployment(name: str, cpu: int, memory: int):
        return store.upsert_deployment(Deployment(id="", name=name, flow_name="f", entrypoint="f.py:f", work_pool_name="p",
                                                  infra_overrides={"cpu": cpu, "memory": memory}))  # fmt: skip

    def finished(dep, final: StateType, peak_mib: float | None, message: str | None = None) -> None:
        run = store.create_flow_run_from_deployment(dep.id)
        for state in (StateType.PENDING, StateType.RUNNING):
            store.set_flow_run_state(run.id, State(type=state))
        store.set_flow_run_state(run.id, State(type=final, message=message))
        if peak_mib is not None:
            m = lambda v: {"value": v, "source": "test"}  # noqa: E731
            store.write_flow_run_usage(run.id, {"peak_memory_mib": m(peak_mib), "peak_cpu": m(0.2), "billed_seconds": m(60.0),
                                                "wall_seconds": m(60.0),
                                                "requested_cpu": m(dep.infra_overrides["cpu"]),
                                                "requested_memory_mib": m(dep.infra_overrides["memory"]),
                                                "platform": {"kind": "ecs", "launch_type": "FARGATE", "region": "us-east-1"}})

    big, tight, idle = deployment("big", 2048, 8192), deployment("tight", 512, 1024), deployment("idle", 1024, 2048)
    for _ in range(4):
        finished(big, StateType.COMPLETED, 400.0)
        finished(big, StateType.FAILED, None)  # neither completed nor out of memory: not advice
    finished(tight, StateType.COMPLETED, 900.0)
    finished(tight, StateType.CRASHED, None, "Container killed: out of memory (OutOfMemoryError)")
    finished(tight, StateType.CRASHED, None, "Task stopped: Spot interruption")
    deps = [big, tight, idle]
    badges = deployment_badges(store, deps)
    assert badges == {d.id: deployment_badge(store, d.full_name) for d in deps}
    assert badges[big.id].startswith("downsize 2048 cpu / 8192 MiB -> "), badges
    assert badges[tight.id] != badges[idle.id] and len(set(badges.values())) == 3
