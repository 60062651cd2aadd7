"""The ``@flow`` decorator and the Flow object it returns."""

from __future__ import annotations


import inspect
from functools import update_wrapper
from typing import Any, Callable, Iterable

from .engine.flow_engine import FlowRunEngine
from .engine.futures import upstream_futures
from .engine.hooks import check_hooks
from .engine.parameters import bind_call, parameter_schema, validate_parameters
from .engine.retries import RetryDelay
from .engine.runners import resolve_task_runner
from .engine.tracebacks import strip_engine_frames
from .exceptions import ConfigurationError

__all__ = ["Flow", "flow"]

# Options a copy keeps (``with_options``); each is an argument of Flow.__init__.
_OPTIONS = (
    "name", "version", "flow_run_name", "description", "retries", "retry_delay_seconds", "timeout_seconds",
    "task_runner", "validate_parameters", "persist_result", "result_storage", "result_serializer",
    "cache_result_in_memory", "log_prints", "tags", "on_completion", "on_failure", "on_cancellation", "on_crashed",
)


class Flow:
    """A function whose calls are recorded as flow runs (sub-flow runs inside another flow)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        version: str | int | None = None,
        flow_run_name: str | Callable[[], str] | None = None,
        description: str | None = None,
        retries: int | None = None,
        retry_delay_seconds: RetryDelay = 0,
        timeout_seconds: float | None = None,
        task_runner: Any = None,
        validate_parameters: bool = True,
        persist_result: bool | None = None,
        result_storage: Any = None,
        result_serializer: Any = None,
        cache_result_in_memory: bool = True,
        log_prints: bool | None = False,
        tags: Iterable[str] = (),
        on_completion: list[Callable[..., Any]] | None = None,
        on_failure: list[Callable[..., Any]] | None = None,
        on_cancellation: list[Callable[..., Any]] | None = None,
        on_crashed: list[Callable[..., Any]] | None = None,
    ):
        if not callable(fn):
            raise ConfigurationError("@flow must decorate a function")
        self.fn = fn
        self.name = name or fn.__name__.replace("_", "-")
        self.version = None if version is None else str(version)
        self.flow_run_name = flow_run_name
        self.description = description or inspect.getdoc(fn)
        self.retries = retries or 0
        self.retry_delay_seconds = retry_delay_seconds
        self.timeout_seconds = timeout_seconds
        resolve_task_runner(task_runner)  # a bad value fails at decoration, not at the first run
        self.task_runner = task_runner
        self.should_validate_parameters = validate_parameters
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.cache_result_in_memory = cache_result_in_memory
        self.log_prints = log_prints
        self.tags = list(tags)
        self.on_completion = check_hooks(on_completion, "on_completion")
        self.on_failure = check_hooks(on_failure, "on_failure")
        self.on_cancellation = check_hooks(on_cancellation, "on_cancellation")
        self.on_crashed = check_hooks(on_crashed, "on_crashed")
        self.is_async = inspect.iscoroutinefunction(fn)
        update_wrapper(self, fn)

    def __call__(self, *args: Any, wait_for: Any = None, return_state: bool = False, **kwargs: Any) -> Any:
        from .client import get_client

        for future, _ in upstream_futures(wait_for):
            future.wait()
        engine = FlowRunEngine(self, bind_call(self.fn, args, kwargs), get_client())
        if self.is_async:
            return _async_call(engine, return_state)
        try:
            value = engine.run_sync()
        except Exception as exc:
            if return_state:
                return engine.final_state
            if engine.parent is not None:
                raise
            # A top-level call: the caller sees its own frames, not the engine's.
            raise exc.with_traceback(strip_engine_frames(exc.__traceback__))
        return engine.final_state if return_state else value

    def validate_parameters(self, parameters: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
        return validate_parameters(self.fn, parameters, partial=partial)

    def parameter_schema(self) -> dict[str, Any]:
        return parameter_schema(self.fn)

    def serve(self, name: str, *, interval: Any = None, cron: str | None = None, rrule: str | None = None,
              timezone: str | None = None, work_pool_name: str | None = None, parameters: dict[str, Any] | None = None,
              schedule: Any = None, tags: Iterable[str] = (), description: str | None = None,
              version: str | int | None = None, limit: int | None = None) -> Any:
        """Register a deployment of this flow and launch its runs from this process until Ctrl-C.

        ``interval`` (seconds or a timedelta), ``cron`` or ``rrule`` (with ``timezone``) give it
        a schedule, as in Prefect. Blocks when called from plain code; inside a running event
        loop it returns a coroutine (``await flow.serve(...)``). See :mod:`fleetflow.serve`.
        """
        from .serve import serve
        from .server.schemas.schedules import schedule_from_options

        schedule = schedule_from_options(schedule=schedule, interval=interval, cron=cron, rrule=rrule, timezone=timezone)
        return serve(self, name, work_pool_name=work_pool_name, parameters=parameters, schedule=schedule,
                     tags=tags, limit=limit, description=description, version=version)

    def with_options(self, **options: Any) -> "Flow":
        """A copy with some options changed."""
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigurationError(f"unknown flow option(s) {', '.join(unknown)}; valid: {', '.join(_OPTIONS)}")
        current = {name: getattr(self, name) for name in _OPTIONS if name != "validate_parameters"}
        current["validate_parameters"] = self.should_validate_parameters
        return Flow(self.fn, **{**current, **options})

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


async def _async_call(engine: FlowRunEngine, return_state: bool) -> Any:
    if not return_state:
        return await engine.run_async()
    try:
        await engine.run_async()
    except Exception:
        pass
    return engine.final_state


def flow(__fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorate a function as a flow: ``@flow`` or ``@flow(name=..., retries=...)``."""
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)
