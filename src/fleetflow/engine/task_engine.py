"""Running one task call: upstream waits, cache lookup, states, retries (tenacity), timeout,
result, hooks, and the run's log lines (Prefect's "Created task run ...", "Finished in state
...", the user's traceback on failure and one line per retry).

Hot path: a task run costs two store calls (create with PENDING+RUNNING, then the final
state; group commit makes them one buffered record), and the engine's own per-call Python is
kept small: states built without validation (the engine makes their values itself), no
context managers or future walks for plain arguments, ids from a pool (:mod:`.ids`), one
timestamp per event. Small results are stored inline in the final state.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import inspect
import traceback
from typing import TYPE_CHECKING, Any, Iterator

from .. import states as st
from ..exceptions import FleetflowError, RunTimeout, UpstreamTaskError
from ..settings import get_settings
from .context import FlowRunContext, TaskRunContext, flow_run_ctx, tags_ctx, task_run_ctx
from .futures import TaskFuture, allow_failure, resolve_futures, upstream_futures
from .hooks import render_run_name, run_hooks
from .ids import new_id
from .logs import EngineLog
from .results import load_result, persist_result
from .retries import retry_delay
from .timeouts import await_with_timeout, call_with_timeout
from .tracebacks import already_logged, mark_logged, user_traceback

if TYPE_CHECKING:  # tenacity (and asyncio) load with the first task that retries or is async
    import tenacity


def exception_data(exc: BaseException) -> dict[str, Any]:
    """What a FAILED state records about an exception."""
    return {
        "exception": {
            "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": str(exc),
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-20000:],
        }
    }


def failure_message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def failed_state(exc: BaseException, what: str, timeout: float | None) -> st.State:
    """FAILED, or FAILED('TimedOut') for a timeout, carrying the exception in memory."""
    if isinstance(exc, RunTimeout):
        message = f"{what} run exceeded timeout of {float(timeout or 0)} seconds (timeout_seconds={timeout})"
        state = st.Failed(name="TimedOut", message=message, data=exception_data(exc))
    else:
        state = st.Failed(message=failure_message(exc), data=exception_data(exc))
    return state.with_exception(exc)


def log_failure(logger: Any, exc: BaseException) -> None:
    """The user's traceback, once per exception."""
    if not already_logged(exc):
        text = user_traceback(exc) if not isinstance(exc, RunTimeout) else failure_message(exc)
        logger.error("Encountered exception during execution:\n" + text)
        mark_logged(exc)


class TaskRunEngine:
    """The lifecycle of one task run inside a flow run."""

    def __init__(self, task: Any, parameters: dict[str, Any], ctx: FlowRunContext, task_run_id: str | None = None,
                 wait_for: Any = None):
        self.task = task
        self.parameters = parameters
        self.ctx = ctx
        self.client = ctx.client
        self.task_run_id = task_run_id or new_id()
        self.task_run: Any = None
        self.wait_for = wait_for
        self.final_state: st.State | None = None
        # Assigned in the caller's thread, so mapped runs are numbered in submission order.
        self.dynamic_key = ctx.next_dynamic_key(task.task_key)
        self.name = self._run_name()
        extra_tags = tags_ctx.get()
        self.tags = sorted(set(task.tags).union(extra_tags)) if task.tags or extra_tags else []
        self.logger: Any = None
        self.lines = get_settings().task_run_log_lines

    def announce(self, submitted: bool) -> None:
        """Prefect's flow-run log lines for a new task run."""
        if not self.lines:
            return
        second = f"Submitted task run {self.name!r} for execution." if submitted else f"Executing {self.name!r} immediately..."
        flow_run_log(self.ctx).info(f"Created task run {self.name!r} for task {self.task.name!r}", second)

    def _run_name(self) -> str:
        if self.task.task_run_name:
            return render_run_name(self.task.task_run_name, self.parameters, "task_run_name")
        return f"{self.task.name}-{self.dynamic_key}"

    # ---- states -------------------------------------------------------------------------
    def _cache_key(self) -> str | None:
        fn = self.task.cache_key_fn
        return fn(TaskRunContext(self.task, None, self.parameters), self.parameters) if fn else None  # type: ignore[arg-type]

    def _upstream_problem(self) -> str | None:
        """Wait for upstream futures; name the first that failed (unless allow_failure)."""
        if self.wait_for is None and not _nested(self.parameters):
            return None  # hot path: plain arguments hold no futures
        for future, allowed in upstream_futures([self.wait_for, self.parameters]):
            state = future.wait()
            if not allowed and state is not None and not state.is_completed():
                return f"Upstream task run '{future.task_run_id}' did not reach a 'COMPLETED' state."
        return None

    def begin(self) -> tuple[bool, Any]:
        """Create the run. Returns (True, value) when no execution is needed (cache hit, or
        an upstream failed: then the value is the error to raise), else (False, None)."""
        problem = self._upstream_problem()
        key = self._cache_key()
        cached = self.client.read_cache(key) if key and not self.task.refresh_cache else None
        now = st.utcnow()
        if problem:
            second = st.new_state(_S.PENDING, "NotReady", problem, now)
        elif cached:
            second = st.new_state(_S.COMPLETED, "Cached", "result taken from cache", now, {"result": cached})
        else:
            second = st.new_state(_S.RUNNING, "Running", None, now)
        self.task_run = self.client.create_task_run(
            self.ctx.flow_run.id, self.task.task_key, self.name, dynamic_key=self.dynamic_key, cache_key=key,
            states=[st.new_state(_S.PENDING, "Pending", None, now), second], id=self.task_run_id,
        )
        self.logger = EngineLog(self.ctx.flow_run, self.client, self.task_run)
        if problem:
            self.final_state = second.with_exception(UpstreamTaskError(problem))
            return True, self.final_state._exception
        if cached:
            value = load_result(cached)
            self._finished(second.with_value(value))
            return True, value
        self.ctx.active_task_runs.add(self.task_run_id)
        return False, None

    def _finished(self, state: st.State) -> None:
        self.final_state = state
        if self.lines or not state.is_completed():
            self.logger.info(f"Finished in state {state}")
        hooks = self.task.on_completion if state.is_completed() else self.task.on_failure if state.is_failed() else ()
        if hooks:
            run_hooks(hooks, self.task, self.task_run, state, self.logger)

    def complete(self, value: Any) -> Any:
        ref = persist_result(value, self.task.result_storage)
        state = st.new_state(_S.COMPLETED, "Completed", None, None, {"result": ref})
        self.ctx.record_task_run_state(self.task_run_id, state)
        self.ctx.active_task_runs.discard(self.task_run_id)
        if self.task_run.cache_key:
            exp = self.task.cache_expiration
            expires = st.utcnow() + exp if isinstance(exp, dt.timedelta) else None
            self.client.write_cache(self.task_run.cache_key, ref, expires)
        self._finished(state.with_value(value))
        return value

    def fail(self, exc: BaseException) -> None:
        self.ctx.active_task_runs.discard(self.task_run_id)
        log_failure(self.logger, exc)
        state = failed_state(exc, "Task", self.task.timeout_seconds)
        self.client.set_task_run_state(self.task_run_id, state)
        self._finished(state)

    def crash(self, exc: BaseException) -> None:
        state = st.Cancelled if isinstance(exc, KeyboardInterrupt) else st.Crashed
        self.ctx.active_task_runs.discard(self.task_run_id)
        self.final_state = state(message=failure_message(exc) or type(exc).__name__).with_exception(exc)
        try:
            self.client.set_task_run_state(self.task_run_id, self.final_state)
        except FleetflowError:
            pass

    def _before_retry(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        n, total = retry_state.attempt_number, self.task.retries
        delay = retry_state.next_action.sleep if retry_state.next_action else 0
        if exc is not None:
            log_failure(self.logger, exc)
        self.logger.info(f"Task run failed with exception {exc!r} - Retry {n}/{total} will start {delay:g} second(s) from now")
        self.client.set_task_run_state(
            self.task_run_id,
            st.Scheduled(name="AwaitingRetry", message=f"retry {n} of {total} after {failure_message(exc)}"),
        )

    def _retrying(self, attempt: int) -> None:
        if attempt > 1:
            self.client.set_task_run_state(self.task_run_id, st.Running(name="Retrying"))

    def _retryer(self, cls: type) -> Any:
        import tenacity

        return cls(
            stop=tenacity.stop_after_attempt(self.task.retries + 1),
            wait=lambda rs: retry_delay(self.task.retry_delay_seconds, rs.attempt_number, self.task.retry_jitter_factor),
            retry=tenacity.retry_if_exception_type(Exception),
            before_sleep=self._before_retry,
            reraise=True,
        )

    # ---- execution ----------------------------------------------------------------------
    def _context(self) -> TaskRunContext:
        log_prints = self.task.log_prints if self.task.log_prints is not None else self.ctx.log_prints
        return TaskRunContext(self.task, self.task_run, self.parameters, log_prints)

    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        """Task run context for the body; FAILED on an exception, CRASHED/CANCELLED on a signal."""
        token = task_run_ctx.set(self._context())
        try:
            with self._slots():
                yield
        except Exception as exc:
            self.fail(exc)
            raise
        except BaseException as exc:
            self.crash(exc)
            raise
        finally:
            task_run_ctx.reset(token)

    def _slots(self) -> Any:
        """Tag concurrency slots held while the task runs (see engine/concurrency.py)."""
        from .concurrency import task_slots

        return task_slots(self.client, self.tags, self.task_run_id, self.logger)

    def _what(self) -> str:
        return f"task {self.task.name!r}"

    def run_sync(self) -> Any:
        skip, value = self.begin()
        if skip:
            return self._skipped(value)
        task = self.task
        if task.retries == 0 and task.timeout_seconds is None and not self.tags:
            value = self._run_plain()  # hot path: no retries, timeout or concurrency slots
        else:
            with self._scope():
                value = self._run_with_options()
        return self.complete(value)

    def _run_plain(self) -> Any:
        """The body in its task run context: :meth:`_scope` without slots, inlined."""
        token = task_run_ctx.set(self._context())
        try:
            return self._call()
        except Exception as exc:
            self.fail(exc)
            raise
        except BaseException as exc:
            self.crash(exc)
            raise
        finally:
            task_run_ctx.reset(token)

    def _run_with_options(self) -> Any:
        if self.task.retries == 0:
            return call_with_timeout(self._call, self.task.timeout_seconds, self._what())
        import tenacity

        for attempt in self._retryer(tenacity.Retrying):
            with attempt:
                self._retrying(attempt.retry_state.attempt_number)
                value = call_with_timeout(self._call, self.task.timeout_seconds, self._what())
        return value

    def _skipped(self, value: Any) -> Any:
        if isinstance(value, UpstreamTaskError):
            self.logger.info(f"Finished in state {self.final_state}")
            raise value
        return value

    def _call(self) -> Any:
        params = resolve_futures(self.parameters) if _nested(self.parameters) else self.parameters
        result = self.task.call_fn(params)
        if inspect.iscoroutine(result):
            import asyncio

            return asyncio.run(result)
        return result

    async def run_async(self) -> Any:
        skip, value = self.begin()
        if skip:
            return self._skipped(value)
        import tenacity

        with self._scope():
            async for attempt in self._retryer(tenacity.AsyncRetrying):
                with attempt:
                    self._retrying(attempt.retry_state.attempt_number)
                    coro = self.task.call_fn(resolve_futures(self.parameters))
                    value = await await_with_timeout(coro, self.task.timeout_seconds, self._what())
        return self.complete(value)

    def state_or_raise(self, run: Any) -> st.State:
        """For ``return_state=True``: run, and hand back the final state instead of raising."""
        try:
            run()
        except Exception:
            pass
        assert self.final_state is not None
        return self.final_state


def flow_run_log(ctx: FlowRunContext) -> EngineLog:
    """The engine's INFO lines about the flow run of ``ctx``, made once per flow run."""
    log = ctx.engine_log
    if log is None or log.flow_run is not ctx.flow_run:
        log = ctx.engine_log = EngineLog(ctx.flow_run, ctx.client)
    return log


_S = st.StateType
# Argument values that may hold futures or states to wait for and resolve.
_NESTING = (TaskFuture, allow_failure, st.State, list, tuple, set, dict)


def _nested(parameters: dict[str, Any]) -> bool:
    for value in parameters.values():
        if isinstance(value, _NESTING):
            return True
    return False


def submit_task(task: Any, parameters: dict[str, Any], wait_for: Any = None, return_state: bool = False) -> Any:
    """Run a task through the flow's task runner; the returned future knows its task run id."""
    ctx = flow_run_ctx.get()
    if ctx is None:
        raise FleetflowError(f"{task.name}.submit() must be called inside a @flow; call {task.name}.fn() directly outside flows")
    engine = TaskRunEngine(task, parameters, ctx, wait_for=wait_for)
    engine.announce(submitted=True)
    run_ctx = contextvars.copy_context()
    future = ctx.task_runner.submit(lambda: run_ctx.run(engine.run_sync))
    task_future = TaskFuture(future, engine.task_run_id, ctx.client, engine)
    ctx.track(task_future)
    if return_state:
        task_future.wait()
        return task_future.get_state()
    return task_future
