"""The State model and which transitions between state types are allowed.

A run's history is a list of States. Terminal states are final: a COMPLETED run never goes
back to RUNNING, which is what makes "exactly once" claims and reconciliation safe.
Retries go RUNNING -> SCHEDULED("AwaitingRetry") -> RUNNING("Retrying"). A paused flow run
goes RUNNING -> PAUSED -> RUNNING("Resuming").

The module also offers Prefect 2's state helpers: the ``Completed()`` ... ``Paused()``
constructors, ``State.result()`` and the ``is_*()`` predicates, so code written against
``prefect.states`` runs unchanged.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

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
    PAUSED = "PAUSED"


STATE_RESULTS_MODULE = "fleetflow.engine.state_results"

TERMINAL = frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED})

_S = StateType
_ALLOWED: dict[StateType, frozenset[StateType]] = {
    _S.SCHEDULED: frozenset({_S.SCHEDULED, _S.PENDING, _S.RUNNING, _S.CANCELLING, _S.CANCELLED, _S.CRASHED, _S.FAILED}),
    _S.PENDING: frozenset({_S.PENDING, _S.RUNNING, _S.COMPLETED, _S.SCHEDULED, _S.CANCELLING, _S.CANCELLED, _S.CRASHED, _S.FAILED}),
    # No RUNNING -> RUNNING: a second runner of a run must be refused, not restart it.
    _S.RUNNING: frozenset({_S.COMPLETED, _S.FAILED, _S.CRASHED, _S.CANCELLING, _S.CANCELLED, _S.SCHEDULED}),
    _S.CANCELLING: frozenset({_S.CANCELLING, _S.CANCELLED, _S.CRASHED, _S.FAILED, _S.COMPLETED}),
    _S.PAUSED: frozenset({_S.PAUSED, _S.RUNNING, _S.CANCELLING, _S.CANCELLED, _S.CRASHED, _S.FAILED}),
}
_ALLOWED[_S.RUNNING] = _ALLOWED[_S.RUNNING] | {_S.PAUSED}
_ALLOWED[_S.PENDING] = _ALLOWED[_S.PENDING] | {_S.PAUSED}


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

    # In-process only (never stored): the value or exception of a run that ended in this
    # process, so ``state.result()`` needs no storage read and re-raises the original error.
    _value: Any = PrivateAttr(default=None)
    _has_value: bool = PrivateAttr(default=False)
    _exception: BaseException | None = PrivateAttr(default=None)

    def model_post_init(self, __context: Any) -> None:
        if not self.name:
            self.name = self.type.value.title()

    def with_value(self, value: Any) -> "State":
        """Remember the in-process return value (returns self, for chaining)."""
        private = self.__pydantic_private__
        if private is None:
            self._value, self._has_value = value, True
        else:  # what pydantic's __setattr__ does for private attributes, without its dispatch
            private["_value"], private["_has_value"] = value, True
        return self

    def with_exception(self, exc: BaseException) -> "State":
        self._exception = exc
        return self

    def result(self, raise_on_failure: bool = True, fetch: bool = True) -> Any:
        """The run's return value; a failed/crashed/cancelled state raises its exception.

        With ``raise_on_failure=False`` the exception is returned instead. Works on states
        read from the store in any process: the value is loaded from its result reference.
        """
        # A run-time plug-in lookup by name (as orchestrator.schemas does for FlowRun.result):
        # reading results needs storage blocks, which sit above this module.
        import importlib

        return importlib.import_module(STATE_RESULTS_MODULE).state_result(self, raise_on_failure)

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

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def __repr__(self) -> str:
        msg = f", message={self.message!r}" if self.message else ""
        return f"{self.name}(type={self.type.value}{msg})"

    def __str__(self) -> str:
        """Prefect's short form: ``Completed()`` or ``Failed('1/3 states failed.')``."""
        return f"{self.name}({self.message!r})" if self.message else f"{self.name}()"


def construct(cls: Any, values: dict[str, Any], private: dict[str, Any] | None = None) -> Any:
    """An instance of the pydantic model ``cls`` from ``values`` (every field, already of the
    right type), without validation, defaults or post-init hooks.

    For values the engine and the store make themselves on the per-task hot path, where even
    ``model_construct`` costs several microseconds (it fills defaults and private attributes
    field by field). The result behaves like a validated instance (dump, copy, equality).
    """
    obj = object.__new__(cls)
    setattr_ = object.__setattr__
    setattr_(obj, "__dict__", values)
    setattr_(obj, "__pydantic_fields_set__", set(values))
    setattr_(obj, "__pydantic_extra__", None)
    setattr_(obj, "__pydantic_private__", private)
    return obj


def new_state(type: StateType, name: str, message: str | None = None, timestamp: dt.datetime | None = None,  # noqa: A002
              data: dict[str, Any] | None = None) -> State:
    """A State built without validation (the engine's hot path): ``name`` must be given
    (``State`` fills it from the type), ``timestamp`` defaults to now."""
    return construct(State, {"type": type, "name": name, "message": message,
                             "timestamp": timestamp if timestamp is not None else utcnow(),
                             "data": {} if data is None else data},
                     {"_value": None, "_has_value": False, "_exception": None})


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


def Paused(**kw: Any) -> State:  # noqa: N802
    return State(type=StateType.PAUSED, **kw)


def is_state(value: Any) -> bool:
    return isinstance(value, State)


def is_state_iterable(value: Any) -> bool:
    """A list/tuple/set whose every element is a State (Prefect's rule for a flow's return)."""
    return isinstance(value, (list, tuple, set)) and bool(value) and all(isinstance(v, State) for v in value)


def aggregate_states(states: Any) -> State:
    """One final state for a flow that returned several: Failed('1/3 states failed.') when any
    failed, Pending when some are not final, else Completed('All states completed.')."""
    states = list(states)
    failed = [s for s in states if not s.is_completed() and (s.is_final or s.name == "NotReady")]
    if failed:
        return Failed(message=f"{len(failed)}/{len(states)} states failed.")
    unfinished = [s for s in states if not s.is_final]
    if unfinished:
        return Pending(message=f"{len(unfinished)}/{len(states)} states are not final.")
    return Completed(message="All states completed.")
