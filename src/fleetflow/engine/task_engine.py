"""Running one task call: cache lookup, states, retries (tenacity), timeout, result.

Hot path: a task run costs two store transactions (create with PENDING+RUNNING, then the
final state). Small results are stored inline in the final state.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import traceback
import uuid
from typing import Any, Iterator

import tenacity

from .. import states as st
from ..exceptions import FleetflowError
from .context import FlowRunContext, TaskRunContext, flow_run_ctx, task_run_ctx
from .futures import TaskFuture, resolve_futures
from .results import load_result, persist_result
from .retries import retry_delay
from .timeouts import await_with_timeout, call_with_timeout


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


class TaskRunEngine:
    """The lifecycle of one task run inside a flow run."""

    def __init__(self, task: Any, parameters: dict[str, Any], ctx: FlowRunContext, task_run_id: str | None = None):
        self.task = task
        self.parameters = parameters
        self.ctx = ctx
        self.client = ctx.client
        self.task_run_id = task_run_id or str(uuid.uuid4())
        self.task_run: Any = None

    # ---- states -------------------------------------------------------------------------
    def _cache_key(self) -> str | None:
        fn = self.task.cache_key_fn
        return fn(TaskRunContext(self.task, None, self.parameters), self.parameters) if fn else None  # type: ignore[arg-type]

    def begin(self) -> tuple[bool, Any]:
        """Create the run. Returns (True, cached value) on a cache hit, else (False, None)."""
        key = self._cache_key()
        cached = self.client.read_cache(key) if key else None
        first = st.Pending()
        second = (
            st.Completed(name="Cached", message="result taken from cache", data={"result": cached})
            if cached
            else st.Running()
        )
        self.task_run = self.client.create_task_run(
            self.ctx.flow_run.id,
            self.task.task_key,
            self.task.name,
            dynamic_key=self.ctx.next_dynamic_key(self.task.task_key),
            cache_key=key,
            states=[first, second],
            id=self.task_run_id,
        )
        if cached:
            return True, load_result(cached)
        self.ctx.active_task_runs.add(self.task_run_id)
        return False, None

    def complete(self, value: Any) -> Any:
        ref = persist_result(value)
        self.client.set_task_run_state(self.task_run_id, st.Completed(data={"result": ref}))
        self.ctx.active_task_runs.discard(self.task_run_id)
        if self.task_run.cache_key:
            exp = self.task.cache_expiration
            expires = st.utcnow() + exp if isinstance(exp, dt.timedelta) else None
            self.client.write_cache(self.task_run.cache_key, ref, expires)
        return value

    def fail(self, exc: BaseException) -> None:
        self.ctx.active_task_runs.discard(self.task_run_id)
        self.client.set_task_run_state(
            self.task_run_id, st.Failed(message=failure_message(exc), data=exception_data(exc))
        )

    def crash(self, exc: BaseException) -> None:
        state = st.Cancelled if isinstance(exc, KeyboardInterrupt) else st.Crashed
        self.ctx.active_task_runs.discard(self.task_run_id)
        try:
            self.client.set_task_run_state(self.task_run_id, state(message=failure_message(exc) or type(exc).__name__))
        except FleetflowError:
            pass

    def _before_retry(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        self.client.set_task_run_state(
            self.task_run_id,
            st.Scheduled(name="AwaitingRetry", message=f"retry {retry_state.attempt_number} of {self.task.retries} after {failure_message(exc)}"),
        )

    def _retrying(self, attempt: int) -> None:
        if attempt > 1:
            self.client.set_task_run_state(self.task_run_id, st.Running(name="Retrying"))

    def _retryer(self, cls: type) -> Any:
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
            yield
        except Exception as exc:
            self.fail(exc)
            raise
        except BaseException as exc:
            self.crash(exc)
            raise
        finally:
            task_run_ctx.reset(token)

    def _what(self) -> str:
        return f"task {self.task.name!r}"

    def run_sync(self) -> Any:
        hit, value = self.begin()
        if hit:
            return value
        with self._scope():
            if self.task.retries == 0:  # hot path: no retry machinery for the common case
                value = call_with_timeout(self._call, self.task.timeout_seconds, self._what())
            else:
                for attempt in self._retryer(tenacity.Retrying):
                    with attempt:
                        self._retrying(attempt.retry_state.attempt_number)
                        value = call_with_timeout(self._call, self.task.timeout_seconds, self._what())
        return self.complete(value)

    def _call(self) -> Any:
        params = resolve_futures(self.parameters)
        result = self.task.call_fn(params)
        if asyncio.iscoroutine(result):
            return asyncio.run(result)
        return result

    async def run_async(self) -> Any:
        hit, value = self.begin()
        if hit:
            return value
        with self._scope():
            async for attempt in self._retryer(tenacity.AsyncRetrying):
                with attempt:
                    self._retrying(attempt.retry_state.attempt_number)
                    coro = self.task.call_fn(resolve_futures(self.parameters))
                    value = await await_with_timeout(coro, self.task.timeout_seconds, self._what())
        return self.complete(value)


def submit_task(task: Any, parameters: dict[str, Any]) -> TaskFuture:
    """Run a task in the flow's thread pool; the returned future knows its task run id."""
    ctx = flow_run_ctx.get()
    if ctx is None:
        raise FleetflowError(f"{task.name}.submit() must be called inside a @flow; call {task.name}() directly outside flows")
    engine = TaskRunEngine(task, parameters, ctx)
    run_ctx = contextvars.copy_context()
    future = ctx.executor.submit(run_ctx.run, engine.run_sync)
    ctx.track(future)
    return TaskFuture(future, engine.task_run_id, ctx.client)
