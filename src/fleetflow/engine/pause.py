"""Pausing a flow run in-process until someone resumes it (Prefect's ``pause_flow_run``).

The run enters PAUSED and its process waits, polling the store, until
``resume_flow_run(id)`` (or ``fleetflow flow-run resume ID``) moves it back to RUNNING, from
any process. When ``timeout`` passes first the run fails with :class:`PausedRunTimeout`; a
run cancelled while paused stops waiting and is cancelled.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from .. import states as st
from ..exceptions import ConfigurationError, InvalidStateTransition, PausedRunTimeout, RunCancelled
from .context import flow_run_ctx, task_run_ctx
from .logs import run_logger

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI


def pause_flow_run(timeout: float = 3600, poll_interval: float | None = None, key: str | None = None) -> None:
    """Pause the calling flow run until it is resumed, or fail it after ``timeout`` seconds."""
    from ..settings import get_settings

    ctx = flow_run_ctx.get()
    if ctx is None or task_run_ctx.get() is not None:
        raise ConfigurationError("pause_flow_run() must be called from a flow's body (not from a task or outside flows)")
    client, run_id = ctx.client, ctx.flow_run.id
    logger = run_logger(ctx.flow_run, client)
    until = st.utcnow() + dt.timedelta(seconds=timeout)
    client.set_flow_run_state(run_id, st.Paused(message=f"paused until resumed (timeout {timeout:g}s)",
                                                data={"pause_timeout": until.isoformat(), "pause_key": key}))
    logger.info("Pausing flow, execution will continue when this flow run is resumed.")
    interval = poll_interval or get_settings().pause_poll_interval
    deadline = time.monotonic() + timeout
    while True:
        state = client.read_flow_run(run_id).state
        if state is not None and state.type is st.StateType.RUNNING:
            logger.info("Resuming flow run execution!")
            return
        if state is not None and (state.is_final or state.type is st.StateType.CANCELLING):
            raise RunCancelled(f"flow run {run_id} was {state.type.value} while paused")
        if time.monotonic() >= deadline:
            raise PausedRunTimeout(f"Flow run was paused and never resumed (timeout {timeout:g}s). "
                                   f"Resume paused runs with `fleetflow flow-run resume {run_id}`.")
        time.sleep(interval)


def resume_flow_run(flow_run_id: str, client: OrchestratorAPI | None = None) -> None:
    """Resume a PAUSED flow run (its waiting process continues)."""
    from ..client import get_client

    client = client or get_client()
    run = client.read_flow_run(flow_run_id)
    if run.state is None or run.state.type is not st.StateType.PAUSED:
        current = run.state.type.value if run.state else "new"
        raise InvalidStateTransition(f"flow run {run.name!r} is {current}, not PAUSED; only paused runs can be resumed",
                                     current=current, proposed="RUNNING")
    client.set_flow_run_state(flow_run_id, st.Running(name="Resuming"))
