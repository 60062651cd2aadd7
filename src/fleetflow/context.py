"""Prefect-compatible ``prefect.context``: the run context of the caller, and ``tags``.

``get_run_context()`` returns the innermost context (a TaskRunContext inside a task, else the
FlowRunContext) and raises outside runs, as Prefect does; ``FlowRunContext.get()`` and
``TaskRunContext.get()`` return None instead.
"""

from __future__ import annotations

from typing import Union

from .engine.context import FlowRunContext, TaskRunContext, get_run_context as _innermost, tags
from .exceptions import FleetflowError


class MissingContextError(FleetflowError, RuntimeError):
    """``get_run_context()`` was called outside a flow or task run."""


def get_run_context() -> Union[FlowRunContext, TaskRunContext]:
    """The context of the flow or task run executing this code."""
    ctx = _innermost()
    if ctx is None:
        raise MissingContextError(
            "No run context available: get_run_context() must be called inside a flow or task run. "
            "Outside runs, fleetflow.runtime's attributes are None instead."
        )
    return ctx


__all__ = ["FlowRunContext", "TaskRunContext", "get_run_context", "tags", "MissingContextError"]
