"""Running a flow call in-process: create (or adopt) the run, validate parameters, states,
retries, timeout, sub-flow linking, result persistence, and a final state on every exit path
(return, exception, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .. import states as st
from ..exceptions import FleetflowError, InvalidStateTransition, RunCancelled
from ..orchestrator.schemas import FlowRun
from ..settings import get_settings
from . import lease
from .context import FlowRunContext, current_tags, flow_run_ctx, task_run_ctx
from .flow_states import final_state_of
from .hooks import render_run_name, run_hooks
from .logs import EngineLog, engine_logger, flush_console, flushed_here, get_run_logger, install_print_capture, run_logger, shipper
from .names import generate_run_name
from .parameters import call_with_parameters, parameters_for_storage, validate_parameters
from .results import persist_result
from .retries import retry_delay
from .runners import resolve_task_runner
from .signals import TerminationSignal, handle_termination
from .task_engine import exception_data, failed_state, failure_message, log_failure
from .timeouts import await_with_timeout, call_with_timeout

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI


def process_handle() -> str:
    """Launch handle of the current process (pid and start time): lets `flow-run cancel`
    signal a local run, and never a later process that reused the pid."""
    return lease.process_owner()


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
        self.final_state: st.State | None = None
        # Called with the final state just before it is set, may return it amended: the
        # runner's usage recorder (fleetflow.usage.recorder) writes its record there.
        self.before_final: Callable[[st.State], st.State] | None = None

    # ---- setup --------------------------------------------------------------------------
    def _create_run(self) -> FlowRun:
        if self.parent is not None:
            self.parent_task_run_id = self._create_parent_task_run()
        run = self.client.create_flow_run(
            self.flow.name,
            state=st.Pending(),
            parameters=parameters_for_storage(self.raw_parameters),
            name=self._run_name(),
            parent_task_run_id=self.parent_task_run_id,
            tags=sorted(set(self.flow.tags) | set(current_tags())),
        )
        self._announce(run)
        return self.client.update_flow_run(run.id, infrastructure_pid=process_handle(), infrastructure={"kind": "in-process"})

    def _run_name(self) -> str:
        if self.flow.flow_run_name:
            return render_run_name(self.flow.flow_run_name, self.raw_parameters, "flow_run_name")
        return generate_run_name()

    def _announce(self, run: FlowRun) -> None:
        """Prefect's first console line: ``Created flow run 'brave-otter' for flow 'etl'``."""
        if self.parent is not None:
            run_logger(self.parent.flow_run, self.client).info(f"Created subflow run {run.name!r} for flow {self.flow.name!r}")
        else:
            engine_logger().info(f"Created flow run {run.name!r} for flow {self.flow.name!r}")
            if url := run_page_url(run.id):
                engine_logger().info(f"View at {url}")

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
            params = (validate_parameters(self.flow.fn, self.raw_parameters) if self.flow.should_validate_parameters
                      else dict(self.raw_parameters))
        except FleetflowError as exc:
            self._finish(st.Failed(message=str(exc), data=exception_data(exc)).with_exception(exc))
            raise
        install_print_capture()
        self.ctx = FlowRunContext(self.flow, self.flow_run, self.client, log_prints=bool(self.flow.log_prints),
                                  task_runner=resolve_task_runner(self.flow.task_runner))
        return params

    # ---- states -------------------------------------------------------------------------
    def _set(self, state: st.State) -> None:
        assert self.flow_run is not None
        self.flow_run = self.client.set_flow_run_state(self.flow_run.id, state)

    def _finish(self, state: st.State) -> None:
        """Enter a final state, mirror it on the parent's task run for this sub-flow, log
        ``Finished in state ...`` and call the flow's hooks for it."""
        if self.before_final is not None:
            state = self.before_final(state)
        shipper.flush()  # whoever sees the run final also sees the lines it logged until then
        try:
            self._set(state)
        except InvalidStateTransition:
            # e.g. the run was already CANCELLED by a user while finishing.
            pass
        lease.leave(self.flow_run.id)
        if self.parent_task_run_id:
            try:
                self.client.set_task_run_state(self.parent_task_run_id, state.model_copy())
            except InvalidStateTransition:
                pass
        self.final_state = state
        if self.flow_run is not None:
            logger = EngineLog(self.flow_run, self.client)  # no logging.LogRecord for the engine's own line
            with flushed_here():
                logger.info(f"Finished in state {state}")
            run_hooks(self._hooks_for(state), self.flow, self.flow_run, state, logger)
        flush_console()  # before any traceback Python prints for the caller

    def _hooks_for(self, state: st.State) -> list[Any]:
        if state.is_completed():
            return self.flow.on_completion
        if state.is_crashed():
            return self.flow.on_crashed
        if state.is_failed():
            return self.flow.on_failure
        return self.flow.on_cancellation if state.is_cancelled() else []

    def _complete(self, value: Any) -> Any:
        """Final state from the return value (Prefect's rules, see flow_states.py)."""
        self._wait_for_tasks()
        assert self.ctx is not None
        state, value = final_state_of(value, list(self.ctx.futures), self.ctx.completed_calls)
        if not state.is_completed():
            self._finish(state)
            raise state._exception or FleetflowError(f"flow run ended {state}")
        state.data = {"result": persist_result(value, self.flow.result_storage)}
        self._finish(state.with_value(value))
        return value

    def _wait_for_tasks(self) -> None:
        if self.ctx is not None:
            self.ctx.shutdown()

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
            if self.final_state is None or not self.final_state.is_final:
                log_failure(run_logger(self.flow_run, self.client), exc)
                self._finish(failed_state(exc, "Flow", self.flow.timeout_seconds))
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
        if attempt > self.flow.retries or (self.final_state is not None and self.final_state.is_final):
            return False
        delay = retry_delay(self.flow.retry_delay_seconds, attempt)
        log_failure(get_run_logger(), exc)
        get_run_logger().info(f"Flow run failed with exception {exc!r} - Retry {attempt}/{self.flow.retries} "
                              f"will start {delay:g} second(s) from now")
        self._set(st.Scheduled(name="AwaitingRetry", message=failure_message(exc)))
        if self.ctx is not None:  # a fresh attempt: its own task runner and submitted futures
            self.ctx.restart(self.ctx.task_runner.duplicate())
        time.sleep(delay)
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
            flush_console()

    def _what(self) -> str:
        return f"flow {self.flow.name!r}"

    def run_sync(self) -> Any:
        params = self._prepare()
        with self._scope(), handle_termination():
            lease.enter_running(self)
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
            lease.enter_running(self)
            attempt = 1
            while True:
                try:
                    coro = call_with_parameters(self.flow.fn, params)
                    value = await await_with_timeout(coro, self.flow.timeout_seconds, self._what())
                    import asyncio  # async flows only (keeps it off a sync flow's start-up path)

                    return await asyncio.get_running_loop().run_in_executor(None, self._complete, value)
                except Exception as exc:
                    if not self._retry(attempt, exc):
                        raise
                    attempt += 1


def run_page_url(flow_run_id: str) -> str | None:
    """The web UI's page of a run when a server is configured (``FLEETFLOW_API_URL``), else None."""
    api_url = get_settings().api_url
    return f"{api_url.rstrip('/')}/runs/{flow_run_id}" if api_url else None
