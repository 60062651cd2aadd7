"""Flow runs: create, list (keyset pages, bounded counts), read, long-poll, states, cancel,
and runs from deployments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from ...exceptions import ConfigurationError
from ...orchestrator.keys import Scope
from ...orchestrator.runs import page_cursor
from ...states import StateType
from .auth import Principal, require
from .context import ServerContext, context
from .errors import dump
from .schemas import DeploymentRunCreate, FlowRunCreate, FlowRunUpdate, StateChange, fields
from .waiting import poll_until

router = APIRouter(prefix="/api/v1", tags=["flow runs"])
MAX_PAGE = 500
MAX_WAIT = 60.0
_CANCEL = {StateType.CANCELLING, StateType.CANCELLED}


def who(request: Request, ctx: ServerContext = Depends(context)) -> Principal:
    return ctx.principal(request)


def _wake_for(ctx: ServerContext, run: Any) -> None:
    keys = [f"run:{run.id}"]
    if run.work_pool_name and run.state is not None and run.state.type is StateType.SCHEDULED:
        keys.append(f"pool:{run.work_pool_name}")
    ctx.notifier.notify(*keys)


@router.post("/flow_runs", status_code=201)
def create_flow_run(body: FlowRunCreate, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    if p.is_run_token:
        if not body.parent_task_run_id or body.deployment_id:
            raise ConfigurationError("a run token may only create in-process sub-flow runs of its own run")
        ctx.check_task_run(p, body.parent_task_run_id, "creating a sub-flow run")
    else:
        require(p, Scope.WORKER, "creating a flow run directly (use POST /deployments/{id}/runs to run a deployment)")
    run = ctx.store.create_flow_run(body.flow_name, **fields(body, exclude={"flow_name"}))
    _wake_for(ctx, run)
    return dump(run)


@router.post("/deployments/{deployment:path}/runs", status_code=201)
def create_flow_run_from_deployment(
    deployment: str, body: DeploymentRunCreate, p: Principal = Depends(who), ctx: ServerContext = Depends(context)
) -> Any:
    if p.is_run_token:
        if body.parent_flow_run_id is None:
            raise ConfigurationError("a run token creates deployment runs as children: pass parent_flow_run_id")
        ctx.check_run(p, body.parent_flow_run_id, "creating a child run")
    else:
        require(p, Scope.RUN, "creating a run from a deployment")
    run = ctx.store.create_flow_run_from_deployment(deployment, **fields(body))
    _wake_for(ctx, run)
    return dump(run)


@router.get("/flow_runs")
def read_flow_runs(
    state_type: list[StateType] | None = Query(default=None, description="Only runs in these states."),
    flow_name: str | None = None, deployment_id: str | None = None, work_pool_name: str | None = None,
    parent_flow_run_id: str | None = None, worker_name: str | None = None,
    created_after: dt.datetime | None = None, created_before: dt.datetime | None = None,
    cursor: str | None = Query(default=None, description="next_cursor of the previous page."),
    limit: int = Query(default=200, ge=1, le=MAX_PAGE),
    p: Principal = Depends(who), ctx: ServerContext = Depends(context),
) -> Any:  # fmt: skip
    if p.is_run_token and parent_flow_run_id is None:
        raise ConfigurationError("a run token lists only the children of a run it owns: pass parent_flow_run_id")
    if p.is_run_token:
        ctx.check_run(p, parent_flow_run_id or "", "listing child runs")
    runs = ctx.store.read_flow_runs(
        state_types=state_type, flow_name=flow_name, deployment_id=deployment_id, work_pool_name=work_pool_name,
        parent_flow_run_id=parent_flow_run_id, worker_name=worker_name, limit=limit,
        created_after=created_after, created_before=created_before, cursor=cursor,
    )  # fmt: skip
    return {"items": dump(runs), "next_cursor": page_cursor(runs[-1]) if len(runs) == limit else None}


@router.get("/flow_runs/count")
def count_flow_runs(
    state_type: list[StateType] | None = Query(default=None), flow_name: str | None = None,
    work_pool_name: str | None = None, created_after: dt.datetime | None = None,
    limit: int = Query(default=10_000, ge=1, le=100_000, description="Count at most this many."),
    p: Principal = Depends(who), ctx: ServerContext = Depends(context),
) -> Any:  # fmt: skip
    require(p, Scope.READ, "counting flow runs")
    n = ctx.store.count_flow_runs(state_types=state_type, flow_name=flow_name, work_pool_name=work_pool_name,
                                  created_after=created_after, limit=limit)  # fmt: skip
    return {"count": n, "limit": limit, "at_least": n >= limit}


@router.get("/flow_runs/{flow_run_id}")
def read_flow_run(flow_run_id: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    run = ctx.store.read_flow_run(flow_run_id)
    ctx.check_run_read(p, run)
    return dump(run)


@router.get("/flow_runs/{flow_run_id}/wait")
async def wait_for_flow_run(
    flow_run_id: str, timeout: float = Query(default=30.0, ge=0, le=MAX_WAIT),
    p: Principal = Depends(who), ctx: ServerContext = Depends(context),
) -> Any:  # fmt: skip
    """Returns when the run is final, or as it is after ``timeout`` seconds."""
    run = await poll_until(ctx.notifier, f"run:{flow_run_id}", lambda: ctx.store.read_flow_run(flow_run_id),
                           lambda r: bool(r.state and r.state.is_final), timeout)  # fmt: skip
    ctx.check_run_read(p, run)
    return dump(run)


@router.post("/flow_runs/{flow_run_id}/state")
def set_flow_run_state(
    flow_run_id: str, body: StateChange, p: Principal = Depends(who), ctx: ServerContext = Depends(context)
) -> Any:
    scope = Scope.RUN if body.state.type in _CANCEL and p.scope is Scope.RUN else Scope.WORKER
    ctx.check_run(p, flow_run_id, f"moving flow run {flow_run_id} to {body.state.type.value}", scope)
    run = ctx.store.set_flow_run_state(flow_run_id, body.state, force=body.force)
    _wake_for(ctx, run)
    return dump(run)


@router.get("/flow_runs/{flow_run_id}/states")
def read_flow_run_states(flow_run_id: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    ctx.check_run_read(p, ctx.store.read_flow_run(flow_run_id))
    return dump(ctx.store.read_flow_run_states(flow_run_id))


@router.patch("/flow_runs/{flow_run_id}")
def update_flow_run(
    flow_run_id: str, body: FlowRunUpdate, p: Principal = Depends(who), ctx: ServerContext = Depends(context)
) -> Any:
    ctx.check_run(p, flow_run_id, "updating a flow run")
    return dump(ctx.store.update_flow_run(flow_run_id, **body.fields))


@router.delete("/flow_runs/{flow_run_id}", status_code=204)
def delete_flow_run(flow_run_id: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> None:
    require(p, Scope.ADMIN, "deleting a flow run")
    ctx.store.delete_flow_run(flow_run_id)


@router.post("/flow_runs/{flow_run_id}/token", status_code=201)
def mint_run_token(flow_run_id: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    """A token for the launch of this run (workers call it right before launching)."""
    require(p, Scope.WORKER, "minting a run token")
    return {"token": ctx.store.issue_run_token(flow_run_id)}
