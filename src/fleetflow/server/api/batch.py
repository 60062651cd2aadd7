"""``POST /api/v1/batch``: the writes a running flow defers, several task runs' worth per request.

The HTTP client (:mod:`fleetflow.client.batching`) buffers task-run creations, task-run state
changes and log lines, and sends them here in order. Each item goes through the same route
function (and so the same permission checks) as its single request would; items are applied
in order, and each gets its own result, so one refused item does not hide the others:
``{"results": [{"ok": true, "result": ...} | {"error": {"code", "message", "attrs"}}]}``.

A batch is one request with one ``X-Request-Id``: a retry of it is answered from the ledger
(the stream tier, :mod:`.ledger`), so a batch is applied once.
"""

from __future__ import annotations

from typing import Any, Callable

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, ValidationError

from ...exceptions import ConfigurationError, FleetflowError, error_payload
from .auth import Principal
from .context import ServerContext, context
from .flow_runs import who
from .schemas import LogBatch, StateChange, TaskRunCreate
from . import task_runs

router = APIRouter(prefix="/api/v1", tags=["task runs and logs"])
MAX_ITEMS = 2000


class BatchItem(BaseModel):
    op: str = Field(description="create_task_run, set_task_run_state or write_logs.")
    body: dict[str, Any] = Field(description="The body of the op's single request.")
    task_run_id: str | None = Field(default=None, description="For set_task_run_state: the task run.")


class Batch(BaseModel):
    items: list[BatchItem] = Field(description=f"Applied in order (at most {MAX_ITEMS}).", max_length=MAX_ITEMS)


def _create(item: BatchItem, p: Principal, ctx: ServerContext) -> Any:
    task_runs.create_task_run(TaskRunCreate.model_validate(item.body), p, ctx)
    return None  # the client built the task run itself; echoing it back would only cost time


def _state(item: BatchItem, p: Principal, ctx: ServerContext) -> Any:
    task_runs.set_task_run_state(item.task_run_id or "", StateChange.model_validate(item.body), p, ctx)
    return None


def _logs(item: BatchItem, p: Principal, ctx: ServerContext) -> Any:
    return task_runs.write_logs(LogBatch.model_validate(item.body), p, ctx)


OPS: dict[str, Callable[[BatchItem, Principal, ServerContext], Any]] = {
    "create_task_run": _create,
    "set_task_run_state": _state,
    "write_logs": _logs,
}


def apply_item(item: BatchItem, p: Principal, ctx: ServerContext) -> dict[str, Any]:
    """One item's result: ``{"ok": True, "result": ...}`` or ``{"error": payload}``."""
    handler = OPS.get(item.op)
    try:
        if handler is None:
            raise ConfigurationError(f"unknown batch op {item.op!r}; known: {', '.join(sorted(OPS))}")
        return {"ok": True, "result": handler(item, p, ctx)}
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        return {"error": error_payload(ConfigurationError(f"invalid {item.op} item: {problems}"))}
    except FleetflowError as exc:
        return {"error": error_payload(exc)}


@router.post("/batch")
def write_batch(body: Batch, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    """Task-run creations, task-run state changes and log lines, applied in order."""
    return {"results": [apply_item(item, p, ctx) for item in body.items]}
