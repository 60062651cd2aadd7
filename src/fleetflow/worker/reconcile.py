"""What to do with a run whose lease lapsed: one pure function, ``decide(run, lease, launch)``.

Inputs are plain values, so every combination is unit-tested without a store or a process:

* the run's state (and whether a launch attempt was recorded),
* its lease (who held it, until when, and whether it has expired at the time of the sweep),
* what the infrastructure says about the launch: alive, gone, or unknown (cannot be checked:
  another host, no handle, an API error).

Why these answers:

* PENDING means no user code has started (the runner's claim is what makes it RUNNING), so a
  PENDING run whose launcher is gone is put back to SCHEDULED for any worker: safe because the
  claim is conditional on the attempt token, which rescheduling clears.
* RUNNING (or an in-process retry, SCHEDULED with a lease) whose executor is gone is CRASHED
  with what was lost and when it was last seen; if the infrastructure is alive the reconciler
  re-attaches (watches it and holds the lease) instead.
* CANCELLING: kill what is alive, then CANCELLED; nothing alive -> CANCELLED.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from ..states import StateType


class Launch(enum.Enum):
    """What the infrastructure says about a run's launch."""

    ALIVE = "alive"
    GONE = "gone"
    UNKNOWN = "unknown"


class Action(enum.Enum):
    NOTHING = "nothing"  # final, or the lease is still fresh
    REATTACH = "reattach"  # watch the live launch and hold the lease
    RESCHEDULE = "reschedule"  # PENDING that never started user code -> SCHEDULED
    CRASH = "crash"
    KILL = "kill"  # CANCELLING with live infrastructure: stop it, then CANCELLED
    CANCEL = "cancel"  # CANCELLING with nothing alive: CANCELLED


@dataclass(frozen=True)
class RunView:
    state: StateType | None
    attempt: int = 0
    handle: str | None = None


@dataclass(frozen=True)
class LeaseView:
    owner: str | None
    expires: dt.datetime | None
    expired: bool


@dataclass(frozen=True)
class Decision:
    action: Action
    message: str = ""


_FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}


def _last_seen(lease: LeaseView, lease_seconds: float) -> str:
    if lease.expires is None:
        return "it never held a lease"
    seen = lease.expires - dt.timedelta(seconds=lease_seconds)
    return f"last heartbeat from {lease.owner or 'its executor'} at {seen:%Y-%m-%d %H:%M:%S} UTC"


def decide(run: RunView, lease: LeaseView, launch: Launch, *, lease_seconds: float = 30.0) -> Decision:
    """The action for one run (see the module docstring for the reasoning)."""
    if run.state is None or run.state in _FINAL or not lease.expired:
        return Decision(Action.NOTHING)
    if run.state is StateType.CANCELLING:
        if launch is Launch.ALIVE:
            return Decision(Action.KILL, "cancelled; its executor was lost, the infrastructure was stopped by reconcile")
        return Decision(Action.CANCEL, f"cancelled; nothing was running any more ({_last_seen(lease, lease_seconds)})")
    if launch is Launch.ALIVE:
        return Decision(Action.REATTACH, f"re-attached to {run.handle or 'its launch'}")
    if run.state is StateType.PENDING:
        what = f"launch attempt {run.attempt}" if run.attempt else "its claim"
        return Decision(Action.RESCHEDULE, f"rescheduled: the worker was lost after {what}, before the flow started "
                                           f"({_last_seen(lease, lease_seconds)})")
    where = "the infrastructure is gone" if launch is Launch.GONE else "the infrastructure cannot be checked"
    return Decision(Action.CRASH, f"lost: the run's lease expired and {where} ({_last_seen(lease, lease_seconds)}); "
                                  "its result, if any, was not reported")
