"""Task runs, logs and the task result cache: the stream a running flow writes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from ...exceptions import PermissionDenied
from ...orchestrator.keys import Scope
from .auth import Principal, require
from .context import ServerContext, context
from .errors import dump
from .flow_runs import who
from .schemas import CacheWrite, LogBatch, StateChange, TaskRunCreate, fields

router = APIRouter(prefix="/api/v1", tags=["task runs and logs"])


@router.post("/task_runs", status_code=201)
def create_task_run(body: TaskRunCreate, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    """Creation and first states in one request (the engine's batching)."""
    ctx.check_run(p, body.flow_run_id, "creating a task run")
    task_run = ctx.store.create_task_run(body.flow_run_id, body.task_key, body.name,
                                         **fields(body, exclude={"flow_run_id", "task_key", "name"}))  # fmt: skip
    ctx.remember_task_run(task_run.id, task_run.flow_run_id)
    return dump(task_run)


@router.get("/task_runs/{task_run_id}")
def read_task_run(task_run_id: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    task_run = ctx.store.read_task_run(task_run_id)
    ctx.check_run_read(p, ctx.store.read_flow_run(task_run.flow_run_id)) if p.is_run_token else None
    return dump(task_run)


@router.get("/flow_runs/{flow_run_id}/task_runs")
def read_task_runs(flow_run_id: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    if p.is_run_token:
        ctx.check_run_read(p, ctx.store.read_flow_run(flow_run_id))
    return dump(ctx.store.read_task_runs(flow_run_id))


@router.post("/task_runs/{task_run_id}/state")
def set_task_run_state(
    task_run_id: str, body: StateChange, p: Principal = Depends(who), ctx: ServerContext = Depends(context)
) -> Any:
    ctx.check_task_run(p, task_run_id, "setting a task run's state")
    return dump(ctx.store.set_task_run_state(task_run_id, body.state, force=body.force))


@router.get("/task_runs/{task_run_id}/states")
def read_task_run_states(task_run_id: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    if p.is_run_token:
        ctx.check_task_run(p, task_run_id, "reading a task run's states")
    return dump(ctx.store.read_task_run_states(task_run_id))


@router.post("/logs", status_code=201)
def write_logs(body: LogBatch, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    """One transaction for the whole batch."""
    if p.is_run_token:
        for run_id in {r.flow_run_id for r in body.records}:
            if run_id is None:
                raise PermissionDenied("a run token writes only log lines of its flow run (flow_run_id is missing)")
            ctx.check_run(p, run_id, "writing logs", after_end=True)
    else:
        require(p, Scope.WORKER, "writing logs")
    ctx.store.write_logs(body.records)
    return {"written": len(body.records)}


@router.get("/logs")
def read_logs(
    flow_run_id: str | None = None, task_run_id: str | None = None,
    after_id: int = Query(default=0, ge=0, description="Tail: only lines after this id."),
    limit: int = Query(default=1000, ge=1, le=5000),
    p: Principal = Depends(who), ctx: ServerContext = Depends(context),
) -> Any:  # fmt: skip
    if p.is_run_token:
        ctx.check_run_read(p, ctx.store.read_flow_run(flow_run_id or ""))
    return dump(ctx.store.read_logs(flow_run_id=flow_run_id, task_run_id=task_run_id, after_id=after_id, limit=limit))


@router.get("/cache/{cache_key:path}")
def read_cache(cache_key: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    return {"result": ctx.store.read_cache(cache_key)}


@router.put("/cache/{cache_key:path}")
def write_cache(cache_key: str, body: CacheWrite, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    if not p.is_run_token:
        require(p, Scope.WORKER, "writing the task cache")
    ctx.store.write_cache(cache_key, body.result, body.expiration)
    return {"written": True}
