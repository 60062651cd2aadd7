"""What a flow's return value means for its final state (Prefect's rules).

* a returned ``State`` (or a future, taken as its state) becomes the flow's final state;
* a returned list/tuple/set of states or futures gives ``Failed('1/3 states failed.')`` when
  any failed, else ``Completed('All states completed.')`` with their results as the value;
* anything else completes the flow; futures nested in it are replaced by their results;
* a flow returning ``None`` fails when a task it submitted failed (``n/m states failed.``).
"""

from __future__ import annotations

from typing import Any

from .. import states as st
from .futures import TaskFuture, resolve_futures


def _as_state(value: Any) -> st.State | None:
    if isinstance(value, st.State):
        return value
    if isinstance(value, TaskFuture):
        value.wait()
        return value.get_state()
    return None


def _state_list(value: Any) -> list[st.State] | None:
    if not isinstance(value, (list, tuple, set)) or not value:
        return None
    states = [_as_state(v) for v in value]
    return None if any(s is None for s in states) else states  # type: ignore[return-value]


def final_state_of(value: Any, submitted: list[TaskFuture], completed: int = 0) -> tuple[st.State, Any]:
    """(final state, the value to persist and return) for a flow that returned ``value``;
    ``submitted`` are the futures of its task runs that were submitted or did not complete,
    and ``completed`` counts the task calls that completed (kept as a count only).

    A FAILED result carries the first failing exception in memory (``state.result()`` raises it).
    """
    single = _as_state(value)
    if single is not None:
        state, result = _adopt(single)
        if isinstance(value, TaskFuture) and state.is_completed():
            state.message = "All states completed."  # a returned future is a reference task
        return state, result
    many = _state_list(value)
    if many is None and value is None and (submitted or completed):
        many = [f.wait() or f.get_state() for f in submitted]
        if all(s.is_completed() for s in many):
            return st.Completed(message="All states completed."), None
        many += [st.Completed()] * completed  # counted in "n/m states failed."
    if many is not None:
        return _aggregate(many)
    return st.Completed(), resolve_futures(value)


def _adopt(state: st.State) -> tuple[st.State, Any]:
    if state.is_completed():
        value = state.result()
        return st.Completed(name=state.name, message=state.message), value
    copy = state.model_copy()
    copy._exception = state._exception
    return copy, None


def _aggregate(states: list[st.State]) -> tuple[st.State, Any]:
    summary = st.aggregate_states(states)
    if summary.is_completed():
        return summary, [s.result() for s in states]
    if not summary.is_failed():  # a flow cannot end with unfinished work: that is a failure
        summary = st.Failed(message=summary.message)
    failed = next((s for s in states if not s.is_completed()), None)
    if failed is not None:
        summary._exception = failed.result(raise_on_failure=False)
        summary.data = dict(failed.data)
    return summary, None
