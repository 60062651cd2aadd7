"""Running a flow call in-process: create (or adopt) the run, validate parameters, states,
retries, timeout, sub-flow linking, result persistence, and a final state on every exit path
(return, exception, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from typing import TYPE_CHECKING, Any, Iterator

from .. import states as st
from ..exceptions import FleetflowError, InvalidStateTransition, RunCancelled
from ..orchestrator.schemas import FlowRun
from .context import FlowRunContext, flow_run_ctx, task_run_ctx
from .logs import get_run_logger, install_print_capture, shipper
from .names import generate_run_name
from .parameters import call_with_parameters, parameters_for_storage, validate_parameters
from .results import persist_result
from .retries import retry_delay
from .signals import TerminationSignal, handle_termination
from .task_engine import exception_data, failure_message
from .timeouts import await_with_timeout, call_with_timeout

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI


def process_handle() -> str:
    """Launch handle of the current process: lets `flow-run cancel` signal a local run."""
    return f"process:{socket.gethostname()}:{os.getpid()}"


class FlowRunEngine:
    """The lifecycle of one flow run executing in this process."""

    def __init__(self, flow: Any, parameters: dict[str, Any], client: OrchestratorAPI, flow_run: FlowRun | None = None):
        self.flow = flow
        self.raw_parameters = parameters
        self.client = client
        self.flow_run = flow_run
        self.parent = flow_run_ctx.get() if flow_run is None else None
        self.parent_task_run_id: str | None = None
        self.ctx: FlowRunContext | None = None

    # ---- setup --------------------------------------------------------------------------
    def _create_run(self) -> FlowRun:
        if self.parent is not None:
            self.parent_task_run_id = self._create_parent_task_run()
        run = self.client.create_flow_run(
            self.flow.name,
            state=st.Pending(),
            parameters=parameters_for_storage(self.raw_parameters),
            name=generate_run_name(),
            parent_task_run_id=self.parent_task_run_id,
            tags=self.flow.tags,
        )
        return self.client.update_flow_run(run.id, infrastructure_pid=process_handle(), infrastructure={"kind": "in-process"})

    def _create_parent_task_run(self) -> str:
        assert self.parent is not None
        key = f"subflow:{self.flow.name}"
        tr = self.client.create_task_run(
            self.parent.flow_run.id,
            key,
            self.flow.name,
            dynamic_key=self.parent.next_dynamic_key(key),
            states=[st.Pending(), st.Running()],
        )
        return tr.id

    def _prepare(self) -> dict[str, Any]:
        """Create the run and validate parameters; a bad parameter FAILs the run and raises."""
        if self.flow_run is None:
            self.flow_run = self._create_run()
        try:
            params = validate_parameters(self.flow.fn, self.raw_parameters)
        except FleetflowError as exc:
            self._finish(st.Failed(message=str(exc), data=exception_data(exc)))
            raise
        install_print_capture()
        self.ctx = FlowRunContext(self.flow, self.flow_run, self.client, log_prints=bool(self.flow.log_prints))
        return params

    # ---- states -------------------------------------------------------------------------
    def _set(self, state: st.State) -> None:
        assert self.flow_run is not None
        self.flow_run = self.client.set_flow_run_state(self.flow_run.id, state)

    def _finish(self, state: st.State) -> None:
        """Enter a final state and mirror it on the parent's task run for this sub-flow."""
        try:
            self._set(state)
        except InvalidStateTransition:
            # e.g. the run was already CANCELLED by a user while finishing.
            pass
        if self.parent_task_run_id:
            try:
                self.client.set_task_run_state(self.parent_task_run_id, state.model_copy())
            except InvalidStateTransition:
                pass

    def _complete(self, value: Any) -> Any:
        self._wait_for_tasks()
        failed = self._failed_submitted_tasks() if value is None else 0
        if failed:
            raise FleetflowError(f"{failed} submitted task run(s) failed and the flow returned nothing")
        self._finish(st.Completed(data={"result": persist_result(value)}))
        return value

    def _wait_for_tasks(self) -> None:
        if self.ctx is not None:
            self.ctx.shutdown()

    def _failed_submitted_tasks(self) -> int:
        assert self.ctx is not None
        return sum(1 for f in self.ctx.futures if f.exception() is not None)

    def _on_exception(self, exc: BaseException) -> None:
        if isinstance(exc, KeyboardInterrupt):
            self._abort(st.Cancelled(message="interrupted (Ctrl-C)"))
        elif isinstance(exc, TerminationSignal):
            cancelling = self._current_type() is st.StateType.CANCELLING
            msg = f"{exc}; cancelled on request" if cancelling else f"{exc}; the process was terminated"
            self._abort(st.Cancelled(message=msg) if cancelling else st.Crashed(message=msg))
        elif isinstance(exc, MemoryError):
            limit = os.environ.get("FLEETFLOW_MEMORY_LIMIT_MIB")
            where = f"its memory limit of {limit} MiB" if limit else "the memory available"
            self._abort(st.Crashed(message=f"out of memory: the run exceeded {where}"))
        elif isinstance(exc, RunCancelled):
            self._abort(st.Cancelled(message=str(exc)))
        elif isinstance(exc, Exception):
            self._wait_for_tasks()
            self._finish(st.Failed(message=failure_message(exc), data=exception_data(exc)))
        else:
            self._abort(st.Crashed(message=failure_message(exc)))

    def _abort(self, state: st.State) -> None:
        """Final state for the flow and every task run still in flight."""
        if self.ctx is not None:
            for task_run_id in list(self.ctx.active_task_runs):
                try:
                    self.client.set_task_run_state(task_run_id, state.model_copy())
                except FleetflowError:
                    pass
        self._finish(state)

    def _current_type(self) -> st.StateType | None:
        assert self.flow_run is not None
        return self.client.read_flow_run(self.flow_run.id).state_type

    def _retry(self, attempt: int, exc: Exception) -> bool:
        """Move to AwaitingRetry and sleep when retries remain; False when exhausted."""
        if attempt > self.flow.retries:
            return False
        get_run_logger().warning(f"attempt {attempt} failed ({failure_message(exc)}); retrying")
        self._set(st.Scheduled(name="AwaitingRetry", message=failure_message(exc)))
        time.sleep(retry_delay(self.flow.retry_delay_seconds, attempt))
        self._set(st.Running(name="Retrying"))
        return True

    # ---- execution ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        """Run context for the body, a final state on every way out, logs flushed."""
        token = flow_run_ctx.set(self.ctx)
        ttoken = task_run_ctx.set(None)
        try:
            yield
        except BaseException as exc:
            self._on_exception(exc)
            raise
        finally:
            task_run_ctx.reset(ttoken)
            flow_run_ctx.reset(token)
            shipper.flush()

    def _what(self) -> str:
        return f"flow {self.flow.name!r}"

    def run_sync(self) -> Any:
        params = self._prepare()
        with self._scope(), handle_termination():
            self._set(st.Running())
            attempt = 1
            while True:
                try:
                    value = call_with_timeout(lambda: call_with_parameters(self.flow.fn, params),
                                              self.flow.timeout_seconds, self._what())
                    return self._complete(value)
                except Exception as exc:
                    if not self._retry(attempt, exc):
                        raise
                    attempt += 1

    async def run_async(self) -> Any:
        params = self._prepare()
        with self._scope():
            self._set(st.Running())
            attempt = 1
            while True:
                try:
                    coro = call_with_parameters(self.flow.fn, params)
                    value = await await_with_timeout(coro, self.flow.timeout_seconds, self._what())
                    return await asyncio.get_running_loop().run_in_executor(None, self._complete, value)
                except Exception as exc:
                    if not self._retry(attempt, exc):
                        raise
                    attempt += 1
