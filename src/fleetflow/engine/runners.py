"""Task runners: how ``Task.submit()`` executes inside a flow run.

``ConcurrentTaskRunner`` (the default) runs submitted tasks in a thread pool;
``SequentialTaskRunner`` runs each submitted task to the end before ``submit()`` returns, so
submissions execute in order. Both hand back a ``concurrent.futures.Future``.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from typing import Any, Callable


class BaseTaskRunner:
    """What the engine needs from a task runner: submit a call, and wait for all at the end."""

    concurrency_type = "base"

    def submit(self, call: Callable[[], Any]) -> cf.Future:
        raise NotImplementedError

    def shutdown(self) -> None:
        """Wait for every submitted call to finish."""

    def duplicate(self) -> "BaseTaskRunner":
        """A fresh runner with the same settings (one per flow run: runners hold thread pools)."""
        return type(self)()

    @property
    def name(self) -> str:
        return type(self).__name__.removesuffix("TaskRunner").lower()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ConcurrentTaskRunner(BaseTaskRunner):
    """Submitted tasks run concurrently in threads (good for I/O-bound work)."""

    concurrency_type = "concurrent"

    def __init__(self, max_workers: int = 16):
        self.max_workers = max_workers
        self._executor: cf.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def duplicate(self) -> "ConcurrentTaskRunner":
        return ConcurrentTaskRunner(self.max_workers)

    def submit(self, call: Callable[[], Any]) -> cf.Future:
        with self._lock:
            if self._executor is None:  # created on first submit: most flows never submit
                self._executor = cf.ThreadPoolExecutor(self.max_workers, thread_name_prefix="fleetflow-task")
            return self._executor.submit(call)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)


class SequentialTaskRunner(BaseTaskRunner):
    """Each submitted task runs to the end, in the caller's thread, before ``submit`` returns."""

    concurrency_type = "sequential"

    def submit(self, call: Callable[[], Any]) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(call())
        except BaseException as exc:  # the future carries it, as a thread pool's would
            future.set_exception(exc)
        return future


def resolve_task_runner(spec: Any) -> BaseTaskRunner:
    """A runner instance from ``task_runner=`` (an instance, a class, or None for the default)."""
    if spec is None:
        return ConcurrentTaskRunner()
    if isinstance(spec, type) and issubclass(spec, BaseTaskRunner):
        return spec()
    if isinstance(spec, BaseTaskRunner):
        return spec.duplicate()
    from ..exceptions import ConfigurationError

    raise ConfigurationError(
        f"task_runner must be a task runner such as SequentialTaskRunner() or ConcurrentTaskRunner(), got {spec!r}",
        field="task_runner",
    )
