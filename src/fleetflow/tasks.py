"""The ``@task`` decorator and the Task object it returns."""

from __future__ import annotations


import datetime as dt
import hashlib
import inspect
import json
from functools import update_wrapper
from typing import Any, Callable, Iterable, Optional

from .engine.context import flow_run_ctx
from .engine.futures import TaskFuture
from .engine.parameters import bind_call, call_with_parameters
from .engine.retries import RetryDelay, exponential_backoff
from .engine.task_engine import TaskRunEngine, submit_task
from .exceptions import ConfigurationError

__all__ = ["Task", "task", "task_input_hash", "exponential_backoff", "unmapped"]


class unmapped:  # noqa: N801 - Prefect's name
    """Marks an argument of ``Task.map`` that is passed whole to every call."""

    def __init__(self, value: Any):
        self.value = value


def task_input_hash(context: Any, parameters: dict[str, Any]) -> str:
    """A cache key from the task's identity and its inputs (use as ``cache_key_fn``)."""
    payload = json.dumps(parameters, sort_keys=True, default=repr)
    return hashlib.sha256(f"{context.task.task_key}:{payload}".encode()).hexdigest()


class Task:
    """A function whose calls inside a flow are recorded as task runs."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        retries: int = 0,
        retry_delay_seconds: RetryDelay = 0,
        retry_jitter_factor: float | None = None,
        timeout_seconds: float | None = None,
        cache_key_fn: Optional[Callable[[Any, dict[str, Any]], Optional[str]]] = None,
        cache_expiration: dt.timedelta | None = None,
        log_prints: bool | None = None,
        tags: Iterable[str] = (),
        description: str | None = None,
    ):
        if not callable(fn):
            raise ConfigurationError("@task must decorate a function")
        if retries < 0:
            raise ConfigurationError(f"retries must be >= 0, got {retries}", field="retries")
        self.fn = fn
        self.name = name or fn.__name__
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.retry_jitter_factor = retry_jitter_factor
        self.timeout_seconds = timeout_seconds
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.log_prints = log_prints
        self.tags = list(tags)
        self.description = description or inspect.getdoc(fn)
        self.task_key = f"{fn.__module__}.{fn.__qualname__}"
        self.is_async = inspect.iscoroutinefunction(fn)
        update_wrapper(self, fn)

    def call_fn(self, parameters: dict[str, Any]) -> Any:
        return call_with_parameters(self.fn, parameters)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ctx = flow_run_ctx.get()
        if ctx is None:  # outside a flow a task is just its function
            return self.fn(*args, **kwargs)
        engine = TaskRunEngine(self, bind_call(self.fn, args, kwargs), ctx)
        if self.is_async:
            return engine.run_async()
        return engine.run_sync()

    def submit(self, *args: Any, **kwargs: Any) -> TaskFuture:
        """Run concurrently in the flow's thread pool; returns a future."""
        return submit_task(self, bind_call(self.fn, args, kwargs))

    def map(self, *args: Any, **kwargs: Any) -> list[TaskFuture]:
        """Submit one run per element of the iterable arguments (``unmapped`` ones are shared)."""
        bound = bind_call(self.fn, args, kwargs)
        iterables = {k: list(v) for k, v in bound.items() if not isinstance(v, unmapped) and _iterable(v)}
        lengths = {len(v) for v in iterables.values()}
        if len(lengths) > 1:
            raise ConfigurationError(f"{self.name}.map(): iterable arguments have different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        static = {k: (v.value if isinstance(v, unmapped) else v) for k, v in bound.items() if k not in iterables}
        return [submit_task(self, {**static, **{k: v[i] for k, v in iterables.items()}}) for i in range(n)]

    def with_options(self, **options: Any) -> "Task":
        """A copy with some options changed."""
        current = dict(
            name=self.name, retries=self.retries, retry_delay_seconds=self.retry_delay_seconds,
            retry_jitter_factor=self.retry_jitter_factor, timeout_seconds=self.timeout_seconds,
            cache_key_fn=self.cache_key_fn, cache_expiration=self.cache_expiration,
            log_prints=self.log_prints, tags=self.tags, description=self.description,
        )
        return Task(self.fn, **{**current, **options})

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"


def _iterable(value: Any) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict))


def task(__fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorate a function as a task: ``@task`` or ``@task(retries=3, ...)``."""
    if __fn is not None:
        return Task(__fn, **options)
    return lambda fn: Task(fn, **options)


