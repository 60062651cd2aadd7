"""``decide(run, lease, launch)`` over every combination of state x lease x launch status."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from fleetflow.states import StateType
from fleetflow.worker.reconcile import Action, Launch, LeaseView, RunView, decide

T = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
FINAL = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]
ACTIVE = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
LEASES = {
    "fresh": LeaseView("worker:w:1", T, expired=False),
    "expired": LeaseView("process:h:1:2", T, expired=True),
    "never": LeaseView(None, None, expired=True),
}


def expected(state: StateType | None, lease: str, launch: Launch) -> Action:
    """The table the module docstring argues for, written out independently."""
    if state is None or state in FINAL or lease == "fresh":
        return Action.NOTHING
    if state is StateType.CANCELLING:
        return Action.KILL if launch is Launch.ALIVE else Action.CANCEL
    if launch is Launch.ALIVE:
        return Action.REATTACH
    if state is StateType.PENDING:
        return Action.RESCHEDULE
    return Action.CRASH  # RUNNING, or SCHEDULED holding a lease (an in-process retry)


COMBINATIONS = list(itertools.product([None, *ACTIVE, *FINAL], LEASES, list(Launch), [0, 2], [None, "process:h:1:2"]))


@pytest.mark.parametrize("state,lease,launch,attempt,handle", COMBINATIONS)
def test_every_combination(state, lease, launch, attempt, handle):
    decision = decide(RunView(state, attempt, handle), LEASES[lease], launch, lease_seconds=30)
    assert decision.action is expected(state, lease, launch)
    if decision.action is not Action.NOTHING:
        assert decision.message  # every action says why, for the run's history


def test_covers_every_action():
    seen = {decide(RunView(s, a, h), LEASES[l], x).action for s, l, x, a, h in COMBINATIONS}
    assert seen == set(Action)


def test_crash_says_what_was_lost_and_when_last_seen():
    lease = LeaseView("process:h:1:2", T, expired=True)
    decision = decide(RunView(StateType.RUNNING, 1, "process:h:1:2"), lease, Launch.GONE, lease_seconds=30)
    assert decision.action is Action.CRASH
    assert "infrastructure is gone" in decision.message and "process:h:1:2" in decision.message
    assert "2026-12-01 08:59:30" in decision.message  # expiry minus one lease: the last heartbeat


def test_unknown_infrastructure_is_named_as_such():
    decision = decide(RunView(StateType.RUNNING, 1, "arn:task"), LEASES["expired"], Launch.UNKNOWN)
    assert decision.action is Action.CRASH and "cannot be checked" in decision.message


def test_pending_reschedule_names_the_attempt():
    decision = decide(RunView(StateType.PENDING, 3, None), LEASES["expired"], Launch.GONE)
    assert decision.action is Action.RESCHEDULE and "launch attempt 3" in decision.message
    assert "its claim" in decide(RunView(StateType.PENDING, 0, None), LEASES["never"], Launch.GONE).message
