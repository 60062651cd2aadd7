"""Cancelling a flow run and, with it, every unfinished descendant.

A run that has not been launched yet (SCHEDULED/PENDING without a launch handle) goes
straight to CANCELLED. A launched one goes to CANCELLING: its worker kills the
infrastructure and records CANCELLED. A run executing in a local process without a worker
(a plain ``my_flow()`` call) is sent SIGTERM, which the engine records as CANCELLED -- but
only after checking the pid *and* its start time: if the process is gone (or its pid now
belongs to another process), nothing is signalled and the run is CANCELLED at once.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any

from .exceptions import FleetflowError, InvalidStateTransition
from .procinfo import ProcessId
from .states import Cancelled, Cancelling, StateType

if TYPE_CHECKING:
    from .client.protocol import OrchestratorAPI

_UNLAUNCHED = {StateType.SCHEDULED, StateType.PENDING}


def cancel_flow_run(client: OrchestratorAPI, flow_run_id: str, *, reason: str = "cancelled by user") -> list[str]:
    """Cancel a run and its unfinished children; returns the ids that were asked to stop."""
    touched: list[str] = []
    _cancel(client, flow_run_id, reason, touched)
    return touched


def _cancel(client: OrchestratorAPI, flow_run_id: str, reason: str, touched: list[str]) -> None:
    run = client.read_flow_run(flow_run_id)
    if run.state is not None and not run.state.is_final and run.state_type is not StateType.CANCELLING:
        if run.state_type in _UNLAUNCHED and not run.infrastructure_pid:
            client.set_flow_run_state(run.id, Cancelled(message=reason))
        else:
            client.set_flow_run_state(run.id, Cancelling(message=reason))
            _signal_local_process(client, run)
        touched.append(run.id)
    for child in client.read_flow_runs(parent_flow_run_id=run.id, limit=10_000):
        if child.state is not None and not child.state.is_final:
            _cancel(client, child.id, f"parent flow run {run.name!r} was cancelled", touched)


def _signal_local_process(client: OrchestratorAPI, run: Any) -> None:
    """SIGTERM a run executing in-process on this host without a worker."""
    handle = run.infrastructure_pid or ""
    if run.worker_name or not handle.startswith("process:"):
        return
    try:
        pid = ProcessId.parse(handle)
    except ValueError:
        return
    if not pid.local:
        return  # another host: its lease lapses if it is gone, and a sweep finishes the cancel
    try:
        signalled = pid.signal(signal.SIGTERM, group=False)
    except PermissionError as exc:
        raise FleetflowError(f"cannot signal process {pid.pid} of run {run.id}: {exc}") from None
    if not signalled:  # gone, or the pid was reused by an unrelated process: signal nothing
        try:
            client.set_flow_run_state(run.id, Cancelled(message=f"cancelled; its process {pid.pid} was already gone"))
        except InvalidStateTransition:
            pass
