"""The State model and which transitions between state types are allowed.

A run's history is a list of States. Terminal states are final: a COMPLETED run never goes
back to RUNNING, which is what makes "exactly once" claims and reconciliation safe.
Retries go RUNNING -> SCHEDULED("AwaitingRetry") -> RUNNING("Retrying").
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from pydantic import BaseModel, Field

from .exceptions import InvalidStateTransition


class StateType(str, enum.Enum):
    """The eight kinds of state a flow or task run can be in."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED})

_S = StateType
_ALLOWED: dict[StateType, frozenset[StateType]] = {
    _S.SCHEDULED: frozenset({_S.SCHEDULED, _S.PENDING, _S.RUNNING, _S.CANCELLING, _S.CANCELLED, _S.CRASHED, _S.FAILED}),
    _S.PENDING: frozenset({_S.PENDING, _S.RUNNING, _S.COMPLETED, _S.SCHEDULED, _S.CANCELLING, _S.CANCELLED, _S.CRASHED, _S.FAILED}),
    # No RUNNING -> RUNNING: a second runner of a run must be refused, not restart it.
    _S.RUNNING: frozenset({_S.COMPLETED, _S.FAILED, _S.CRASHED, _S.CANCELLING, _S.CANCELLED, _S.SCHEDULED}),
    _S.CANCELLING: frozenset({_S.CANCELLING, _S.CANCELLED, _S.CRASHED, _S.FAILED, _S.COMPLETED}),
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class State(BaseModel):
    """One entry of a run's history."""

    type: StateType = Field(description="The kind of state.")
    name: str = Field(default="", description="Display name, e.g. 'Retrying' or 'AwaitingRetry'.")
    message: str | None = Field(default=None, description="Why the run is in this state.")
    timestamp: dt.datetime = Field(default_factory=utcnow, description="When the state was entered (UTC).")
    data: dict[str, Any] = Field(
        default_factory=dict, description="Result reference, exception details or scheduled time."
    )

    def model_post_init(self, __context: Any) -> None:
        if not self.name:
            self.name = self.type.value.title()

    @property
    def is_final(self) -> bool:
        return self.type in TERMINAL

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type in (StateType.FAILED, StateType.CRASHED)

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def __repr__(self) -> str:
        msg = f", message={self.message!r}" if self.message else ""
        return f"{self.name}(type={self.type.value}{msg})"

    __str__ = __repr__


def check_transition(current: StateType | None, proposed: StateType) -> None:
    """Raise :class:`InvalidStateTransition` unless ``current -> proposed`` is allowed."""
    if current is None:
        return
    if current in TERMINAL:
        raise InvalidStateTransition(
            f"run is already {current.value} (final); it cannot move to {proposed.value}. "
            "Start a new run instead.",
            current=current.value,
            proposed=proposed.value,
        )
    if proposed not in _ALLOWED[current]:
        raise InvalidStateTransition(
            f"a {current.value} run cannot move to {proposed.value}",
            current=current.value,
            proposed=proposed.value,
        )


def Scheduled(**kw: Any) -> State:  # noqa: N802 - Prefect-style constructors
    return State(type=StateType.SCHEDULED, **kw)


def Pending(**kw: Any) -> State:  # noqa: N802
    return State(type=StateType.PENDING, **kw)


def Running(**kw: Any) -> State:  # noqa: N802
    return State(type=StateType.RUNNING, **kw)


def Completed(**kw: Any) -> State:  # noqa: N802
    return State(type=StateType.COMPLETED, **kw)


def Failed(**kw: Any) -> State:  # noqa: N802
    return State(type=StateType.FAILED, **kw)


def Crashed(**kw: Any) -> State:  # noqa: N802
    return State(type=StateType.CRASHED, **kw)


def Cancelling(**kw: Any) -> State:  # noqa: N802
    return State(type=StateType.CANCELLING, **kw)


def Cancelled(**kw: Any) -> State:  # noqa: N802
    return State(type=StateType.CANCELLED, **kw)
