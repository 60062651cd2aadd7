"""The ``@flow`` decorator and the Flow object it returns."""

from __future__ import annotations


import inspect
from functools import update_wrapper
from typing import Any, Callable, Iterable

from .engine.flow_engine import FlowRunEngine
from .engine.parameters import bind_call, parameter_schema, validate_parameters
from .engine.retries import RetryDelay
from .exceptions import ConfigurationError

__all__ = ["Flow", "flow"]


class Flow:
    """A function whose calls are recorded as flow runs (sub-flow runs inside another flow)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        version: str | None = None,
        description: str | None = None,
        retries: int = 0,
        retry_delay_seconds: RetryDelay = 0,
        timeout_seconds: float | None = None,
        log_prints: bool = False,
        tags: Iterable[str] = (),
    ):
        if not callable(fn):
            raise ConfigurationError("@flow must decorate a function")
        self.fn = fn
        self.name = name or fn.__name__.replace("_", "-")
        self.version = version
        self.description = description or inspect.getdoc(fn)
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        self.tags = list(tags)
        self.is_async = inspect.iscoroutinefunction(fn)
        update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .client import get_client

        engine = FlowRunEngine(self, bind_call(self.fn, args, kwargs), get_client())
        if self.is_async:
            return engine.run_async()
        return engine.run_sync()

    def validate_parameters(self, parameters: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
        return validate_parameters(self.fn, parameters, partial=partial)

    def parameter_schema(self) -> dict[str, Any]:
        return parameter_schema(self.fn)

    def serve(self, name: str, *, work_pool_name: str | None = None, parameters: dict[str, Any] | None = None,
              schedule: dict[str, Any] | None = None, tags: Iterable[str] = (), limit: int | None = None) -> Any:
        """Register a deployment of this flow and launch its runs from this process until Ctrl-C.

        Blocks when called from plain code; inside a running event loop it returns a coroutine
        (``await flow.serve(...)``). See :mod:`fleetflow.serve`.
        """
        from .serve import serve

        return serve(self, name, work_pool_name=work_pool_name, parameters=parameters, schedule=schedule,
                     tags=tags, limit=limit)

    def with_options(self, **options: Any) -> "Flow":
        current = dict(
            name=self.name, version=self.version, description=self.description, retries=self.retries,
            retry_delay_seconds=self.retry_delay_seconds, timeout_seconds=self.timeout_seconds,
            log_prints=self.log_prints, tags=self.tags,
        )
        return Flow(self.fn, **{**current, **options})

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


def flow(__fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorate a function as a flow: ``@flow`` or ``@flow(name=..., retries=...)``."""
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)


