"""What the engine knows about the run currently executing, per thread/task (contextvars)."""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from ..orchestrator.schemas import FlowRun, TaskRun
from ..states import StateType
from .futures import TaskFuture
from .runners import BaseTaskRunner, ConcurrentTaskRunner

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI


@dataclass
class FlowRunContext:
    """The flow run being executed in this context, and what its tasks share."""

    flow: Any
    flow_run: FlowRun
    client: OrchestratorAPI
    log_prints: bool = False
    task_runner: BaseTaskRunner = field(default_factory=ConcurrentTaskRunner)
    futures: list[Any] = field(default_factory=list)
    # Direct task calls that completed: counted, not kept. A flow returning None needs only
    # how many there were (for "1/3 states failed."); keeping each call's engine alive would
    # hold every result in memory and make every garbage collection walk them.
    completed_calls: int = 0
    active_task_runs: set[str] = field(default_factory=set)
    _counters: dict[str, itertools.count] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    engine_log: Any = None  # the engine's INFO lines about this flow run (task_engine.flow_run_log)
    _record_state: Any = None

    def record_task_run_state(self, task_run_id: str, state: Any) -> None:
        """Set a task run's state when nothing reads the run back: the embedded store's
        ``record_task_run_state`` (no model built) when the client has it, else
        ``set_task_run_state``."""
        record = self._record_state
        if record is None:
            record = self._record_state = getattr(self.client, "record_task_run_state", None) or self.client.set_task_run_state
        record(task_run_id, state)

    @classmethod
    def get(cls) -> "FlowRunContext | None":
        """The flow run context of the caller, or None outside flows (Prefect's API)."""
        return flow_run_ctx.get()

    def track(self, future: Any) -> None:
        with self._lock:
            self.futures.append(future)

    def track_call(self, engine: Any) -> None:
        """A task called directly (not submitted) has ended: count it if it completed, else
        keep a finished future of it for the flow's final state."""
        state = engine.final_state
        if state is not None and state.type is StateType.COMPLETED:
            with self._lock:
                self.completed_calls += 1
        else:
            self.track(TaskFuture.finished(engine.task_run_id, self.client, engine))

    def restart(self, task_runner: BaseTaskRunner) -> None:
        """A fresh attempt of the flow run: its own task runner, and no task runs yet."""
        with self._lock:
            self.futures = []
            self.completed_calls = 0
            self.task_runner = task_runner

    def shutdown(self) -> None:
        """Wait for every submitted task, then free the runner's threads."""
        self.task_runner.shutdown()

    def next_dynamic_key(self, task_key: str) -> str:
        """0, 1, 2... per task within this run: separates repeated calls of one task."""
        with self._lock:
            counter = self._counters.setdefault(task_key, itertools.count())
            return str(next(counter))


@dataclass
class TaskRunContext:
    task: Any
    task_run: TaskRun
    parameters: dict[str, Any]
    log_prints: bool = False

    @classmethod
    def get(cls) -> "TaskRunContext | None":
        return task_run_ctx.get()


flow_run_ctx: contextvars.ContextVar[FlowRunContext | None] = contextvars.ContextVar("fleetflow_flow_run", default=None)
task_run_ctx: contextvars.ContextVar[TaskRunContext | None] = contextvars.ContextVar("fleetflow_task_run", default=None)
tags_ctx: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("fleetflow_tags", default=frozenset())


def get_run_context() -> FlowRunContext | TaskRunContext | None:
    """The innermost run context (task inside flow wins)."""
    return task_run_ctx.get() or flow_run_ctx.get()


@contextlib.contextmanager
def tags(*names: str) -> Iterator[frozenset[str]]:
    """Add tags to every flow and task run created inside the block (nests; Prefect's ``tags``)."""
    current = tags_ctx.get() | frozenset(names)
    token = tags_ctx.set(current)
    try:
        yield current
    finally:
        tags_ctx.reset(token)


def current_tags() -> list[str]:
    return sorted(tags_ctx.get())
