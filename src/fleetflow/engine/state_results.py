"""``State.result()``: a state's return value, or the exception it stands for.

A state that ended in this process carries its value/exception in memory. A state read from
the store (another process, ``run_deployment``) loads the value from its result reference and
rebuilds the exception from what the FAILED state recorded.
"""

from __future__ import annotations

import builtins
from typing import Any

from ..exceptions import MissingResult, RunFailed
from .results import load_result


def state_result(state: Any, raise_on_failure: bool = True) -> Any:
    """See :meth:`fleetflow.states.State.result`."""
    if state.is_completed():
        return _completed_value(state)
    if state._exception is None and not state.is_final:
        raise MissingResult(f"the run is {state.type.value} ({state.name}); it has no result yet. "
                            "Wait for it to finish (future.wait() or run_deployment without timeout=0).")
    exc = state._exception or rebuild_exception(state)
    if raise_on_failure:
        raise exc
    return exc


def _completed_value(state: Any) -> Any:
    if state._has_value:
        return state._value
    ref = state.data.get("result")
    if ref is None:  # a Completed() built by user code carries no value
        return None
    return load_result(ref)


def rebuild_exception(state: Any) -> BaseException:
    """The recorded exception as an instance of its type when that is a builtin or a fleetflow
    error (ValueError, KeyError, RunTimeout...), else :class:`RunFailed` carrying the state;
    never imports user modules."""
    from .. import exceptions

    info = state.data.get("exception") or {}
    type_path, message = info.get("type", ""), info.get("message") or state.message or ""
    module, _, name = type_path.rpartition(".")
    known = {"builtins": builtins, "fleetflow.exceptions": exceptions}.get(module)
    cls = getattr(known, name, None) if known is not None else None
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except Exception:  # an exception type whose constructor wants more than a message
            pass
    what = f"ended {state.type.value} ({state.name})"
    return RunFailed(f"the run {what}: {state.message or 'no message'}", state=state)
