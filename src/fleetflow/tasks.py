"""The ``@task`` decorator and the Task object it returns."""

from __future__ import annotations


import datetime as dt
import hashlib
import inspect
import json
from functools import update_wrapper
from typing import Any, Callable, Iterable, Optional

from .engine.context import flow_run_ctx
from .engine.futures import TaskFuture, allow_failure
from .engine.hooks import check_hooks
from .engine.parameters import bind_call, call_with_parameters
from .engine.retries import RetryDelay, exponential_backoff
from .engine.task_engine import TaskRunEngine, submit_task
from .exceptions import ConfigurationError, TaskOutsideFlowError

__all__ = ["Task", "task", "task_input_hash", "exponential_backoff", "unmapped", "allow_failure"]


class unmapped:  # noqa: N801 - Prefect's name
    """Marks an argument of ``Task.map`` that is passed whole to every call."""

    def __init__(self, value: Any):
        self.value = value


def task_input_hash(context: Any, parameters: dict[str, Any]) -> str:
    """A cache key from the task's identity and its inputs (use as ``cache_key_fn``)."""
    payload = json.dumps(parameters, sort_keys=True, default=repr)
    return hashlib.sha256(f"{context.task.task_key}:{payload}".encode()).hexdigest()


# Options whose values a copy keeps (``with_options``); each is an argument of Task.__init__.
_OPTIONS = (
    "name", "description", "tags", "version", "retries", "retry_delay_seconds", "retry_jitter_factor",
    "timeout_seconds", "cache_key_fn", "cache_expiration", "refresh_cache", "log_prints", "task_run_name",
    "persist_result", "result_storage", "result_serializer", "result_storage_key", "cache_result_in_memory",
    "on_completion", "on_failure",
)


class Task:
    """A function whose calls inside a flow are recorded as task runs."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        retries: int | None = None,
        retry_delay_seconds: RetryDelay = 0,
        retry_jitter_factor: float | None = None,
        timeout_seconds: float | None = None,
        cache_key_fn: Optional[Callable[[Any, dict[str, Any]], Optional[str]]] = None,
        cache_expiration: dt.timedelta | None = None,
        refresh_cache: bool | None = None,
        log_prints: bool | None = None,
        task_run_name: str | Callable[[], str] | None = None,
        persist_result: bool | None = None,
        result_storage: Any = None,
        result_serializer: Any = None,
        result_storage_key: str | None = None,
        cache_result_in_memory: bool = True,
        on_completion: list[Callable[..., Any]] | None = None,
        on_failure: list[Callable[..., Any]] | None = None,
    ):
        if not callable(fn):
            raise ConfigurationError("@task must decorate a function")
        retries = retries or 0
        if retries < 0:
            raise ConfigurationError(f"retries must be >= 0, got {retries}", field="retries")
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description or inspect.getdoc(fn)
        self.tags = list(tags or ())
        self.version = version
        self.retries = retries
        # Prefect's rule: a callable (e.g. exponential_backoff(10)) gets the retry count and
        # returns one delay per retry.
        self.retry_delay_seconds = retry_delay_seconds(retries) if callable(retry_delay_seconds) else retry_delay_seconds
        self.retry_jitter_factor = retry_jitter_factor
        self.timeout_seconds = timeout_seconds
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.refresh_cache = bool(refresh_cache)
        self.log_prints = log_prints
        self.task_run_name = task_run_name
        self.persist_result = persist_result
        self.result_storage = _storage(result_storage)
        self.result_serializer = result_serializer
        self.result_storage_key = result_storage_key
        self.cache_result_in_memory = cache_result_in_memory
        self.on_completion = check_hooks(on_completion, "on_completion")
        self.on_failure = check_hooks(on_failure, "on_failure")
        self.task_key = f"{fn.__module__}.{fn.__qualname__}"
        self.is_async = inspect.iscoroutinefunction(fn)
        update_wrapper(self, fn)

    def call_fn(self, parameters: dict[str, Any]) -> Any:
        return call_with_parameters(self.fn, parameters)

    def __call__(self, *args: Any, wait_for: Any = None, return_state: bool = False, **kwargs: Any) -> Any:
        ctx = flow_run_ctx.get()
        if ctx is None:
            raise TaskOutsideFlowError(
                f"Tasks cannot be run outside of a flow: {self.name}() was called outside a @flow. "
                f"To call the underlying function outside of a flow use `{self.fn.__name__}.fn()`."
            )
        engine = TaskRunEngine(self, bind_call(self.fn, args, kwargs), ctx, wait_for=wait_for)
        engine.announce(submitted=False)
        if self.is_async:
            return _async_call(engine, return_state)
        try:
            if return_state:
                return engine.state_or_raise(engine.run_sync)
            return engine.run_sync()
        finally:
            # A flow returning None takes its final state from every task run, called or submitted.
            ctx.track_call(engine)

    def submit(self, *args: Any, wait_for: Any = None, return_state: bool = False, **kwargs: Any) -> TaskFuture:
        """Run through the flow's task runner; returns a future (or the final state with
        ``return_state=True``)."""
        return submit_task(self, bind_call(self.fn, args, kwargs), wait_for=wait_for, return_state=return_state)

    def map(self, *args: Any, wait_for: Any = None, return_state: bool = False, **kwargs: Any) -> list[Any]:
        """Submit one run per element of the iterable arguments (``unmapped`` ones are shared)."""
        bound = bind_call(self.fn, args, kwargs)
        iterables = {k: list(v) for k, v in bound.items() if not isinstance(v, (unmapped, allow_failure)) and _iterable(v)}
        lengths = {len(v) for v in iterables.values()}
        if len(lengths) > 1:
            raise ConfigurationError(f"{self.name}.map(): iterable arguments have different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        static = {k: (v.value if isinstance(v, unmapped) else v) for k, v in bound.items() if k not in iterables}
        futures = [submit_task(self, {**static, **{k: v[i] for k, v in iterables.items()}}, wait_for=wait_for)
                   for i in range(n)]
        if return_state:
            return [f.wait() for f in futures]
        return futures

    def with_options(self, **options: Any) -> "Task":
        """A copy with some options changed."""
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigurationError(f"unknown task option(s) {', '.join(unknown)}; valid: {', '.join(_OPTIONS)}")
        current = {name: getattr(self, name) for name in _OPTIONS}
        return Task(self.fn, **{**current, **options})

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"


async def _async_call(engine: TaskRunEngine, return_state: bool) -> Any:
    if not return_state:
        return await engine.run_async()
    try:
        await engine.run_async()
    except Exception:
        pass
    return engine.final_state


def _storage(block: Any) -> Any:
    """``result_storage=``: a storage block, or a saved one's 'type/name' (loaded at first use)."""
    if block is not None and not isinstance(block, str) and not hasattr(block, "write_result"):
        raise ConfigurationError(f"result_storage must be a storage block or 'type/name', got {block!r}", field="result_storage")
    return block


def _iterable(value: Any) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict))


def task(__fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorate a function as a task: ``@task`` or ``@task(retries=3, ...)``."""
    if __fn is not None:
        return Task(__fn, **options)
    return lambda fn: Task(fn, **options)
