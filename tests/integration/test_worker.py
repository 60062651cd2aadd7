"""Workers and run_deployment on the embedded default: real worker processes, real subprocesses."""

from __future__ import annotations

import os
import signal

import pytest

from fleetflow import flow
from fleetflow.cancellation import cancel_flow_run
from fleetflow.deployments import ensure_work_pool, run_deployment, run_deployments
from fleetflow.exceptions import InvalidOverrideError, RunFailed
from fleetflow.states import StateType
from worker_helpers import WorkerProcess, deploy, wait_final, wait_for


def test_child_runs_in_its_own_process_linked_to_parent(temp_store, project, worker):
    deploy(project, "echo", "small", infra_overrides={"cpu": 512, "memory": 1024})

    @flow
    def parent():
        run = run_deployment("echo/small", parameters={"x": 21})
        return run.result()

    value = parent()
    assert value["x"] == 21 and value["pid"] != os.getpid()
    parent_run = temp_store.read_flow_runs(flow_name="parent")[0]
    (child,) = temp_store.read_flow_runs(parent_flow_run_id=parent_run.id)
    assert child.infrastructure["memory"] == 1024 and child.infrastructure["cpu"] == 512
    assert child.infrastructure["pid"] == value["pid"]
    assert child.infrastructure_pid.startswith("process:") and child.worker_name == "w-main"
    assert [s.type for s in temp_store.read_flow_run_states(child.id)] == [
        StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.COMPLETED]
    assert any("echo 21" in l.message for l in temp_store.read_logs(flow_run_id=child.id))
    (task_run,) = temp_store.read_task_runs(parent_run.id)
    assert task_run.id == child.parent_task_run_id and task_run.state.type is StateType.COMPLETED


def test_idempotency_key_and_timeout_zero(temp_store, project, worker):
    deploy(project, "echo", "idem")
    first = run_deployment("echo/idem", timeout=0, idempotency_key="k1", as_subflow=False)
    assert first.state.type is StateType.SCHEDULED
    second = run_deployment("echo/idem", timeout=0, idempotency_key="k1", as_subflow=False)
    assert second.id == first.id
    assert wait_final(temp_store, first.id).result()["x"] == 1


def test_failed_child_raises_unless_opted_out(temp_store, project, worker):
    deploy(project, "fail", "f")
    with pytest.raises(RunFailed, match="child failed on purpose"):
        run_deployment("fail/f", as_subflow=False)
    run = run_deployment("fail/f", as_subflow=False, raise_on_failure=False)
    assert run.state.type is StateType.FAILED


def test_bad_run_overrides_rejected_before_a_run_exists(temp_store, project):
    deploy(project, "echo", "ov")
    with pytest.raises(InvalidOverrideError, match="memroy"):
        run_deployment("echo/ov", infra_overrides={"memroy": 1}, timeout=0)
    assert temp_store.read_flow_runs(flow_name="echo") == []


def test_out_of_memory_is_reported_with_the_limit(temp_store, project, worker):
    deploy(project, "hog", "small", infra_overrides={"memory": 256})
    run = run_deployment("hog/small", parameters={"mib": 1024}, raise_on_failure=False, as_subflow=False)
    assert run.state.type is StateType.CRASHED
    assert "out of memory" in run.state.message and "256 MiB" in run.state.message


def test_hard_exit_is_crashed_with_exit_code(temp_store, project, worker):
    deploy(project, "exit_hard", "x")
    run = run_deployment("exit-hard/x", parameters={"code": 3}, raise_on_failure=False, as_subflow=False)
    assert run.state.type is StateType.CRASHED and "exit code 3" in run.state.message


def test_fetch_failure_crashes_and_import_failure_fails(temp_store, project, worker):
    import shutil
    from fleetflow.blocks import Block

    dep = temp_store.read_deployment(deploy(project, "echo", "gone"))
    shutil.rmtree(Block.load(dep.storage_block).basepath)
    run = run_deployment("echo/gone", raise_on_failure=False, as_subflow=False)
    assert run.state.type is StateType.CRASHED and "could not fetch the code" in run.state.message
    # Imports fine here (apply validates by importing) but not in the launched runner.
    (project / "flows.py").write_text((project / "flows.py").read_text()
                                      + "\nif os.environ.get('FLEETFLOW_FLOW_RUN_ID'):\n    import not_a_module_xyz\n")
    deploy(project, "echo", "broken")
    run = run_deployment("echo/broken", raise_on_failure=False, as_subflow=False)
    assert run.state.type is StateType.FAILED and "not_a_module_xyz" in run.state.message


def test_parent_cancellation_kills_child_infrastructure(temp_store, project, worker):
    deploy(project, "sleepy", "long")
    child = run_deployment("sleepy/long", parameters={"seconds": 60}, timeout=0, as_subflow=False)
    running = wait_for(lambda: (r := temp_store.read_flow_run(child.id)).state_type is StateType.RUNNING and r, what="running")
    pid = int(running.infrastructure_pid.split(":")[2])
    cancel_flow_run(temp_store, child.id)
    final = wait_final(temp_store, child.id)
    assert final.state.type is StateType.CANCELLED
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", what="process gone")


def test_cancelling_parent_cascades_to_children(temp_store):
    from fleetflow import states as st

    parent = temp_store.create_flow_run("parent-flow", state=st.Running())
    link = temp_store.create_task_run(parent.id, "k", "child", states=[st.Pending(), st.Running()])
    waiting = temp_store.create_flow_run("echo", state=st.Scheduled(), parent_task_run_id=link.id)
    launched = temp_store.create_flow_run("echo", state=st.Running(), parent_task_run_id=link.id)
    temp_store.update_flow_run(launched.id, infrastructure_pid="arn:aws:ecs:us-east-1:1:task/c/abc", worker_name="w")
    cancelled = cancel_flow_run(temp_store, parent.id)
    assert set(cancelled) == {parent.id, waiting.id, launched.id}
    assert temp_store.read_flow_run(waiting.id).state.type is StateType.CANCELLED  # never launched
    assert temp_store.read_flow_run(launched.id).state.type is StateType.CANCELLING  # its worker kills it


def test_fan_out_waits_for_all_without_threads(temp_store, project, worker):
    import threading

    def client_threads() -> int:  # the http backend's server shares this process: not ours
        return sum(1 for t in threading.enumerate() if not t.name.startswith("AnyIO worker"))

    deploy(project, "echo", "fan")
    before = client_threads()
    runs = run_deployments([("echo/fan", {"x": i}) for i in range(6)])
    assert sorted(r.result()["x"] for r in runs) == list(range(6))
    assert client_threads() <= before + 1


def test_several_workers_never_launch_a_run_twice(temp_store, project, tmp_path):
    ensure_work_pool(temp_store, "race")
    marker = tmp_path / "launches.txt"
    deploy(project, "sleepy", "race", pool="race")
    # Each worker holds at most two runs at a time and each run lasts a moment, so no single
    # worker can drain the queue alone while the others are starting: the claims really race.
    # Twelve runs are twice what the three can hold at once (benchmarks/chaos_trials.py runs more).
    workers = [WorkerProcess("race", f"racer-{i}", "--limit", "2") for i in range(3)]
    try:
        for w in workers:
            w.wait_polling(temp_store, "race")
        # every worker registered (the pool's last_polled only says that one of them polled)
        wait_for(lambda: len(temp_store.read_workers("race")) == 3, what="three workers registered")
        ids = [run_deployment("sleepy/race", parameters={"seconds": 0.5, "marker": str(marker)}, timeout=0,
                              as_subflow=False).id for _ in range(12)]
        finals = [wait_final(temp_store, i) for i in ids]
    finally:
        for w in workers:
            w.stop()
    assert all(r.state.type is StateType.COMPLETED for r in finals), [(r.state, r.worker_name) for r in finals if not r.state.is_completed()]
    assert len(marker.read_text().split()) == 12  # 12 launches for 12 runs
    assert all(r.run_count == 1 for r in finals)
    assert len({r.worker_name for r in finals}) >= 2


@pytest.mark.parametrize("child_survives", [True, False])
def test_worker_sigkill_and_restart_reattaches_or_crashes(temp_store, project, tmp_path, child_survives, monkeypatch):
    monkeypatch.setenv("FLEETFLOW_LEASE_SECONDS", "3")  # the runner's lease lapses soon after it dies
    monkeypatch.setenv("FLEETFLOW_RECONCILE_INTERVAL", "0.5")
    ensure_work_pool(temp_store, "restart")
    marker = tmp_path / "launches.txt"
    deploy(project, "sleepy", "r", pool="restart")
    w1 = WorkerProcess("restart", "stable-name")
    w1.wait_polling(temp_store, "restart")
    run = run_deployment("sleepy/r", parameters={"seconds": 3.0, "marker": str(marker)}, timeout=0, as_subflow=False)
    running = wait_for(lambda: (r := temp_store.read_flow_run(run.id)).state_type is StateType.RUNNING and r, what="running")
    w1.stop(signal.SIGKILL)
    if not child_survives:
        os.kill(int(running.infrastructure_pid.split(":")[2]), signal.SIGKILL)
    w2 = WorkerProcess("restart", "stable-name")
    try:
        final = wait_final(temp_store, run.id)
    finally:
        w2.stop()
    # never launched twice (a child killed right after RUNNING may not have reached its body yet)
    launches = len(marker.read_text().split()) if marker.exists() else 0
    assert launches == 1 if child_survives else launches <= 1
    if child_survives:
        assert final.state.type is StateType.COMPLETED
    else:
        assert final.state.type is StateType.CRASHED and "lease expired and the infrastructure is gone" in final.state.message


def test_no_worker_warning(temp_store, project):
    import fleetflow.run_deployments as rd

    rd.reset_no_worker_warnings()
    ensure_work_pool(temp_store, "lonely")
    deploy(project, "echo", "lonely", pool="lonely")
    with pytest.warns(UserWarning, match="no worker has polled work pool 'lonely'"):
        run_deployment("echo/lonely", timeout=0, as_subflow=False)


def test_sigterm_stops_worker_without_orphaning_its_run(temp_store, project):
    ensure_work_pool(temp_store, "graceful")
    deploy(project, "sleepy", "g", pool="graceful")
    w = WorkerProcess("graceful", "graceful-worker")
    w.wait_polling(temp_store, "graceful")
    run = run_deployment("sleepy/g", parameters={"seconds": 2.0}, timeout=0, as_subflow=False)
    wait_for(lambda: temp_store.read_flow_run(run.id).state_type is StateType.RUNNING, what="running")
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(timeout=15) == 0
    final = wait_final(temp_store, run.id)  # the run finishes on its own and reports
    assert final.state.type is StateType.COMPLETED and final.infrastructure_pid
