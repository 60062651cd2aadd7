"""Launch attempts, runner claims and leases in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest

from fleetflow.exceptions import InvalidStateTransition, StaleLaunch
from fleetflow.orchestrator import Orchestrator, WorkPool
from fleetflow.states import Completed, Running, Scheduled, StateType

OWNER = "worker:w1:abc"


def _claimed(store: Orchestrator, pool: str = "p", lease_seconds: float = 30.0):
    store.create_work_pool(WorkPool(id="", name=pool, type="process"))
    run = store.create_flow_run("f", state=Scheduled(), work_pool_name=pool)
    [claimed] = store.claim_flow_runs(pool, "w1", lease_owner=OWNER, lease_seconds=lease_seconds)
    assert claimed.id == run.id
    return claimed


def test_claim_leases_the_run_to_the_worker(orchestrator):
    run = _claimed(orchestrator)
    assert run.state_type is StateType.PENDING and run.lease_owner == OWNER and run.lease_expires is not None
    assert run.launch_attempt == 0 and run.launch_token is None


def test_each_attempt_gets_a_number_and_a_new_token(orchestrator):
    run = _claimed(orchestrator)
    first = orchestrator.begin_launch_attempt(run.id, OWNER, lease_seconds=30)
    second = orchestrator.begin_launch_attempt(run.id, OWNER, lease_seconds=30)
    assert (first.launch_attempt, second.launch_attempt) == (1, 2)
    assert first.launch_token and second.launch_token and first.launch_token != second.launch_token
    assert orchestrator.begin_launch_attempt(run.id, "worker:other:1", lease_seconds=30) is None  # not its lease


def test_runner_claims_only_its_own_current_attempt(orchestrator):
    run = _claimed(orchestrator)
    old = orchestrator.begin_launch_attempt(run.id, OWNER, lease_seconds=30)
    new = orchestrator.begin_launch_attempt(run.id, OWNER, lease_seconds=30)
    with pytest.raises(StaleLaunch, match="stale .*attempt 2 is the current one"):
        orchestrator.claim_launch(run.id, old.launch_token, "process:h:1:1", lease_seconds=30)
    started = orchestrator.claim_launch(run.id, new.launch_token, "process:h:2:2", lease_seconds=30, handle="process:h:2:2")
    assert started.state_type is StateType.RUNNING and started.run_count == 1
    assert started.lease_owner == "process:h:2:2" and started.infrastructure_pid == "process:h:2:2"
    with pytest.raises(StaleLaunch, match="already RUNNING"):
        orchestrator.claim_launch(run.id, new.launch_token, "process:h:3:3", lease_seconds=30)
    history = [s.type for s in orchestrator.read_flow_run_states(run.id)]
    assert history.count(StateType.RUNNING) == 1


def test_concurrent_runners_of_one_attempt_start_it_once(orchestrator):
    run = _claimed(orchestrator)
    token = orchestrator.begin_launch_attempt(run.id, OWNER, lease_seconds=30).launch_token
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def runner(i: int) -> None:
        barrier.wait()
        try:
            orchestrator.claim_launch(run.id, token, f"process:h:{i}:1", lease_seconds=30)
            outcomes.append("started")
        except StaleLaunch:
            outcomes.append("refused")

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 5 + ["started"]


def test_running_to_running_is_refused(orchestrator):
    run = orchestrator.create_flow_run("f", state=Running())
    with pytest.raises(InvalidStateTransition):
        orchestrator.set_flow_run_state(run.id, Running())


def test_reschedule_clears_the_token_so_the_old_runner_is_refused(orchestrator):
    run = _claimed(orchestrator)
    token = orchestrator.begin_launch_attempt(run.id, OWNER, lease_seconds=30).launch_token
    back = orchestrator.reschedule_flow_run(run.id, OWNER, "worker lost")
    assert back.state_type is StateType.SCHEDULED and back.launch_token is None and back.lease_owner is None
    [again] = orchestrator.claim_flow_runs("p", "w2", lease_owner="worker:w2:x")
    assert again.id == run.id and again.launch_token is None
    with pytest.raises(StaleLaunch, match="no launch attempt"):
        orchestrator.claim_launch(run.id, token, "process:h:1:1", lease_seconds=30)
    assert orchestrator.reschedule_flow_run(run.id, OWNER, "not mine any more") is None


def test_renew_extends_only_live_runs_of_the_owner(orchestrator):
    run = _claimed(orchestrator, lease_seconds=1)
    other = orchestrator.create_flow_run("f", state=Running())
    orchestrator.acquire_lease(other.id, "process:h:9:9", lease_seconds=1)
    before = orchestrator.read_flow_run(run.id).lease_expires
    assert orchestrator.renew_leases(OWNER, lease_seconds=60) == [run.id]
    assert orchestrator.read_flow_run(run.id).lease_expires > before
    # ``take`` moves a run's lease to the caller (a runner taking back its run)
    assert sorted(orchestrator.renew_leases(OWNER, lease_seconds=60, take=[other.id])) == sorted([run.id, other.id])
    assert orchestrator.read_flow_run(other.id).lease_owner == OWNER
    orchestrator.set_flow_run_state(other.id, Completed())
    assert other.id not in orchestrator.renew_leases(OWNER, lease_seconds=60)


def test_expired_leases_are_found_and_taken_over_once(orchestrator):
    run = _claimed(orchestrator, lease_seconds=0.2)
    script = orchestrator.create_flow_run("script", state=Running())
    orchestrator.acquire_lease(script.id, "process:h:7:7", lease_seconds=0.2)
    fresh = orchestrator.create_flow_run("fresh", state=Running())
    orchestrator.acquire_lease(fresh.id, "process:h:8:8", lease_seconds=600)
    deadline = time.monotonic() + 30
    while len(orchestrator.read_expired_leases()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {r.id for r in orchestrator.read_expired_leases()} == {run.id, script.id}
    assert [r.id for r in orchestrator.read_expired_leases(work_pool_name="p")] == [run.id]
    assert [r.id for r in orchestrator.read_expired_leases(pooled=False)] == [script.id]
    [expired] = orchestrator.read_expired_leases(work_pool_name="p")
    assert orchestrator.take_over_lease(expired, "worker:a:1", lease_seconds=30).lease_owner == "worker:a:1"
    assert orchestrator.take_over_lease(expired, "worker:b:1", lease_seconds=30) is None  # the first one won
    assert run.id not in {r.id for r in orchestrator.read_expired_leases()}


def test_runs_that_never_held_a_lease_are_swept_after_the_grace(orchestrator):
    run = orchestrator.create_flow_run("old", state=Running())
    assert orchestrator.read_expired_leases(unleased_grace_seconds=3600) == []
    assert [r.id for r in orchestrator.read_expired_leases(unleased_grace_seconds=0)] == [run.id]


def test_worker_names_are_taken_by_compare_and_set(orchestrator):
    assert orchestrator.claim_worker_name("p", "n", instance_id="i1", hostname="h", pid=1, replace=None)
    assert not orchestrator.claim_worker_name("p", "n", instance_id="i2", hostname="h", pid=2, replace=None)
    holder = orchestrator.read_worker("p", "n")
    assert holder.instance_id == "i1"
    assert orchestrator.claim_worker_name("p", "n", instance_id="i2", hostname="h", pid=2, replace=holder)
    assert not orchestrator.claim_worker_name("p", "n", instance_id="i3", hostname="h", pid=3, replace=holder)  # stale read
    orchestrator.release_worker_name("p", "n", "i2")
    assert orchestrator.read_worker("p", "n").instance_id is None
