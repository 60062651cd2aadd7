"""What the engine knows about the run currently executing, per thread/task (contextvars)."""

from __future__ import annotations

import contextvars
import itertools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..orchestrator.schemas import FlowRun, TaskRun

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI


@dataclass
class FlowRunContext:
    """The flow run being executed in this context, and what its tasks share."""

    flow: Any
    flow_run: FlowRun
    client: OrchestratorAPI
    log_prints: bool = False
    futures: list[Any] = field(default_factory=list)
    active_task_runs: set[str] = field(default_factory=set)
    _executor: Any = None
    _counters: dict[str, itertools.count] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def executor(self) -> Any:
        """Thread pool for ``.submit()``, created on first use and drained when the run ends."""
        with self._lock:
            if self._executor is None:
                import concurrent.futures as cf

                self._executor = cf.ThreadPoolExecutor(max_workers=16, thread_name_prefix="fleetflow-task")
            return self._executor

    def track(self, future: Any) -> None:
        with self._lock:
            self.futures.append(future)

    def shutdown(self) -> None:
        """Wait for every submitted task, then free the pool."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)

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


flow_run_ctx: contextvars.ContextVar[FlowRunContext | None] = contextvars.ContextVar("fleetflow_flow_run", default=None)
task_run_ctx: contextvars.ContextVar[TaskRunContext | None] = contextvars.ContextVar("fleetflow_task_run", default=None)


def get_run_context() -> FlowRunContext | TaskRunContext | None:
    """The innermost run context (task inside flow wins)."""
    return task_run_ctx.get() or flow_run_ctx.get()
