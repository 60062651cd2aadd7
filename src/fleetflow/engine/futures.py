"""Futures returned by ``Task.submit()`` / ``Task.map()``, and ``allow_failure``.

A TaskFuture wraps a ``concurrent.futures.Future`` plus the id of the task run it stands
for, so ``future.get_state()`` can be read from the store while the task is still running.
It is awaitable in async flows. Prefect's name for it, ``PrefectFuture``, is an alias.
"""

from __future__ import annotations

import concurrent.futures as cf
from typing import TYPE_CHECKING, Any, Iterable

from ..states import State, StateType

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI


class allow_failure:  # noqa: N801 - Prefect's name
    """Wraps an upstream future (in ``wait_for=`` or as an argument) so a failure of it does
    not stop the downstream task; as an argument it passes the upstream's exception on."""

    def __init__(self, future: Any):
        self.future = future


class TaskFuture:
    """The eventual result of a submitted task run."""

    def __init__(self, future: cf.Future | None, task_run_id: str, client: OrchestratorAPI, engine: Any = None):
        self._cf = future
        self.task_run_id = task_run_id
        self._client = client
        self._engine = engine

    @classmethod
    def finished(cls, task_run_id: str, client: OrchestratorAPI, engine: Any) -> "TaskFuture":
        """A done future for a task run that was called directly (not submitted). Its
        ``concurrent.futures.Future`` is made only when something asks for it: a flow calling
        many tasks keeps one of these per call and rarely reads them."""
        return cls(None, task_run_id, client, engine)

    @property
    def _future(self) -> cf.Future:
        future = self._cf
        if future is None:
            future = cf.Future()
            state = self._engine.final_state
            if state is not None and state._exception is not None:
                future.set_exception(state._exception)
            else:
                future.set_result(state._value if state is not None else None)
            self._cf = future
        return future

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
        """Block until the task ends; return its value, or raise (or with
        ``raise_on_failure=False`` return) its exception."""
        try:
            return self._future.result(timeout=timeout)
        except cf.TimeoutError:
            raise TimeoutError(f"task run {self.task_run_id} still running after {timeout}s") from None
        except Exception as exc:
            if raise_on_failure:
                raise
            return exc

    def wait(self, timeout: float | None = None) -> State | None:
        """Block until done and return the final state; None when ``timeout`` passes first."""
        done, _ = cf.wait([self._future], timeout=timeout)
        return self.get_state() if done else None

    def get_state(self) -> State:
        """The task run's current state (final once the future is done); never raises."""
        final = getattr(self._engine, "final_state", None) if self.done() else None
        if final is not None:
            return final
        try:
            run = self._client.read_task_run(self.task_run_id)
        except Exception:
            return State(type=StateType.PENDING, message="not started yet")
        return run.state or State(type=StateType.PENDING)

    @property
    def state(self) -> State:
        return self.get_state()

    def done(self) -> bool:
        return self._cf is None or self._cf.done()

    def exception(self) -> BaseException | None:
        """The exception once done (None for success); waits for the task."""
        return self._future.exception()

    def __await__(self):
        import asyncio  # only async flows await futures

        return asyncio.wrap_future(self._future).__await__()

    def __repr__(self) -> str:
        return f"TaskFuture(task_run_id={self.task_run_id!r}, done={self.done()})"


PrefectFuture = TaskFuture


def resolve_futures(value: Any) -> Any:
    """Replace futures (also inside lists, tuples, sets and dict values) by their results;
    ``allow_failure(future)`` becomes the upstream's value or its exception."""
    if isinstance(value, TaskFuture):
        return value.result()
    if isinstance(value, allow_failure):
        inner = value.future
        return inner.result(raise_on_failure=False) if isinstance(inner, TaskFuture) else resolve_futures(inner)
    if isinstance(value, State):
        return value.result()
    if isinstance(value, (list, tuple, set)):
        return type(value)(resolve_futures(v) for v in value)
    if isinstance(value, dict):
        return {k: resolve_futures(v) for k, v in value.items()}
    return value


def upstream_futures(value: Any) -> list[tuple[TaskFuture, bool]]:
    """Every future in ``value`` (nested), with whether it is wrapped in ``allow_failure``."""
    found: list[tuple[TaskFuture, bool]] = []

    def walk(v: Any, allowed: bool) -> None:
        if isinstance(v, TaskFuture):
            found.append((v, allowed))
        elif isinstance(v, allow_failure):
            walk(v.future, True)
        elif isinstance(v, (list, tuple, set)):
            for item in v:
                walk(item, allowed)
        elif isinstance(v, dict):
            for item in v.values():
                walk(item, allowed)

    walk(value, False)
    return found


def wait_all(futures: Iterable[TaskFuture], timeout: float | None = None) -> None:
    cf.wait([f._future for f in futures], timeout=timeout)
