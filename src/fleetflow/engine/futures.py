"""Futures returned by ``Task.submit()`` / ``Task.map()``.

A TaskFuture wraps a ``concurrent.futures.Future`` plus the id of the task run it stands
for, so ``future.state`` can be read from the store while the task is still running.
It is awaitable in async flows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
from typing import TYPE_CHECKING, Any, Iterable

from ..states import State, StateType

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI


class TaskFuture:
    """The eventual result of a submitted task run."""

    def __init__(self, future: cf.Future, task_run_id: str, client: OrchestratorAPI):
        self._future = future
        self.task_run_id = task_run_id
        self._client = client

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
        """Block until the task ends; return its value or raise its exception."""
        try:
            return self._future.result(timeout=timeout)
        except cf.TimeoutError:
            raise TimeoutError(f"task run {self.task_run_id} still running after {timeout}s") from None
        except Exception as exc:
            if raise_on_failure:
                raise
            return exc

    def wait(self, timeout: float | None = None) -> State:
        """Block until done (or timeout); return the state without raising."""
        cf.wait([self._future], timeout=timeout)
        return self.state

    @property
    def state(self) -> State:
        try:
            run = self._client.read_task_run(self.task_run_id)
        except Exception:
            return State(type=StateType.PENDING, message="not started yet")
        return run.state or State(type=StateType.PENDING)

    def done(self) -> bool:
        return self._future.done()

    def __await__(self):
        return asyncio.wrap_future(self._future).__await__()

    def __repr__(self) -> str:
        return f"TaskFuture(task_run_id={self.task_run_id!r}, done={self.done()})"


def resolve_futures(value: Any) -> Any:
    """Replace futures (also inside lists, tuples, sets and dict values) by their results."""
    if isinstance(value, TaskFuture):
        return value.result()
    if isinstance(value, (list, tuple, set)):
        return type(value)(resolve_futures(v) for v in value)
    if isinstance(value, dict):
        return {k: resolve_futures(v) for k, v in value.items()}
    return value


def wait_all(futures: Iterable[TaskFuture], timeout: float | None = None) -> None:
    cf.wait([f._future for f in futures], timeout=timeout)
