"""When a watched process exits, is that news about its run? Not when the run was put back in
the queue after that attempt (``flow-run retry``, an infrastructure relaunch): the suite once
saw a retry issued the moment attempt 1 was FAILED get CRASHED by attempt 1's exit code,
because the worker reaped that process only after the retry."""

from __future__ import annotations

import pytest

from fleetflow.orchestrator.schemas import FlowRun
from fleetflow.states import State, StateType
from fleetflow.worker.loop import requeued_since


def _run(state: StateType, attempt: int, name: str | None = None) -> FlowRun:
    state_ = State(type=state, name=name) if name else State(type=state)
    return FlowRun(id="r", name="n", flow_name="f", state=state_, launch_attempt=attempt)


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
