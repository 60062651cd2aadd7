"""When a watched process exits, is that news about its run? Not when the run was put back in
the queue after that attempt (``flow-run retry``, an infrastructure relaunch): the suite once
saw a retry issued the moment attempt 1 was FAILED get CRASHED by attempt 1's exit code,
because the worker reaped that process only after the retry."""

from __future__ import annotations

import pytest

from fleetflow.orchestrator.schemas import FlowRun
from fleetflow.states import State, StateType
from fleetflow.worker.loop import requeued_since


HANDLE = "process:vm:41:1700000000.5"


def _run(state: StateType, attempt: int, name: str | None = None, handle: str | None = HANDLE) -> FlowRun:
    state_ = State(type=state, name=name) if name else State(type=state)
    return FlowRun(id="r", name="n", flow_name="f", state=state_, launch_attempt=attempt, infrastructure_pid=handle)


@pytest.mark.parametrize("state", [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING, StateType.PAUSED])
def test_the_watched_attempt_still_owning_the_run_is_news(state):
    assert requeued_since(_run(state, 1), 1) is False  # its exit must crash (or relaunch) the run


def test_a_run_retried_after_the_attempt_ended_is_not_crashed_by_its_exit():
    assert requeued_since(_run(StateType.SCHEDULED, 1, "AwaitingRelaunch"), 1) is True


@pytest.mark.parametrize("state", [StateType.PENDING, StateType.RUNNING])
def test_a_newer_attempt_under_way_is_not_crashed_by_the_old_ones_exit(state):
    assert requeued_since(_run(state, 2), 1) is True
    assert requeued_since(_run(state, 2), 2) is False


def test_an_attempt_the_worker_does_not_know_is_judged_as_before():
    assert requeued_since(_run(StateType.SCHEDULED, 1), None) is False


@pytest.mark.parametrize("state", [StateType.PENDING, StateType.RUNNING])
def test_the_watched_process_still_on_record_is_news(state):
    assert requeued_since(_run(state, 1), 1, HANDLE) is False


def test_a_retried_run_claimed_again_before_its_new_attempt_is_recorded_is_not_crashed():
    """Retry cleared the handle, a worker claimed the run (PENDING, still attempt 1), and only
    then attempt 1's process was reaped: the suite saw this CRASH a run that then never ran."""
    assert requeued_since(_run(StateType.PENDING, 1, handle=None), 1, HANDLE) is True


def test_the_next_attempt_recorded_its_own_handle():
    assert requeued_since(_run(StateType.RUNNING, 2, handle="process:vm:77:1700000100.0"), 1, HANDLE) is True
