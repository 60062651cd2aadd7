"""Artifacts, variables and tag concurrency limits (the store's extras)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ...orchestrator.keys import Scope
from .auth import Principal, require
from .context import ServerContext, context
from .errors import dump
from .flow_runs import who

router = APIRouter(prefix="/api/v1", tags=["artifacts, variables, concurrency limits"])


class ArtifactCreate(BaseModel):
    type: str = Field(description="'markdown', 'table' or 'link'.")
    data: Any = Field(default=None, description="The artifact's content.")
    key: str | None = Field(default=None, description="Stable key.")
    description: str | None = Field(default=None, description="What it is.")
    flow_run_id: str | None = Field(default=None, description="Publishing flow run.")
    task_run_id: str | None = Field(default=None, description="Publishing task run.")


class VariableWrite(BaseModel):
    value: str = Field(description="The value.")
    tags: list[str] = Field(default_factory=list, description="Labels.")
    overwrite: bool = Field(default=False, description="Replace an existing variable.")


class LimitWrite(BaseModel):
    limit: int = Field(ge=0, description="Task runs with the tag that may run at once.")


class SlotRequest(BaseModel):
    task_run_id: str = Field(description="The task run taking or giving back a slot.")


def _writer(ctx: ServerContext, p: Principal, flow_run_id: str | None, action: str) -> None:
    if p.is_run_token and flow_run_id:
        ctx.check_run(p, flow_run_id, action)
    elif not p.is_run_token:
        require(p, Scope.WORKER, action)


@router.post("/artifacts", status_code=201)
def create_artifact(body: ArtifactCreate, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    _writer(ctx, p, body.flow_run_id, "publishing an artifact")
    return dump(ctx.store.create_artifact(body.type, body.data, key=body.key, description=body.description,
                                          flow_run_id=body.flow_run_id, task_run_id=body.task_run_id))  # fmt: skip


@router.get("/artifacts")
def read_artifacts(key: str | None = None, flow_run_id: str | None = None, limit: int = Query(default=200, le=1000),
                   p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:  # fmt: skip
    return dump(ctx.store.read_artifacts(key=key, flow_run_id=flow_run_id, limit=limit))


@router.put("/variables/{name}")
def set_variable(name: str, body: VariableWrite, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    require(p, Scope.ADMIN, "setting a variable")
    return dump(ctx.store.set_variable(name, body.value, tags=body.tags, overwrite=body.overwrite))


@router.get("/variables/{name}")
def read_variable(name: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    return {"variable": dump(ctx.store.read_variable(name))}


@router.get("/variables")
def read_variables(p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    return dump(ctx.store.read_variables())


@router.delete("/variables/{name}", status_code=204)
def delete_variable(name: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> None:
    require(p, Scope.ADMIN, "deleting a variable")
    ctx.store.delete_variable(name)


@router.put("/concurrency_limits/{tag}")
def create_concurrency_limit(tag: str, body: LimitWrite, p: Principal = Depends(who),
                             ctx: ServerContext = Depends(context)) -> Any:  # fmt: skip
    require(p, Scope.ADMIN, "setting a concurrency limit")
    return dump(ctx.store.create_concurrency_limit(tag, body.limit))


@router.get("/concurrency_limits")
def read_concurrency_limits(p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    return dump(ctx.store.read_concurrency_limits())


@router.delete("/concurrency_limits/{tag}", status_code=204)
def delete_concurrency_limit(tag: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> None:
    require(p, Scope.ADMIN, "deleting a concurrency limit")
    ctx.store.delete_concurrency_limit(tag)


@router.post("/concurrency_limits/{tag}/acquire")
def acquire_concurrency_slot(tag: str, body: SlotRequest, p: Principal = Depends(who),
                             ctx: ServerContext = Depends(context)) -> Any:  # fmt: skip
    if p.is_run_token:
        ctx.check_task_run(p, body.task_run_id, "taking a concurrency slot")
    else:
        require(p, Scope.WORKER, "taking a concurrency slot")
    return {"outcome": ctx.store.acquire_concurrency_slot(tag, body.task_run_id)}


@router.post("/concurrency_limits/{tag}/release", status_code=204)
def release_concurrency_slot(tag: str, body: SlotRequest, p: Principal = Depends(who),
                             ctx: ServerContext = Depends(context)) -> None:  # fmt: skip
    if p.is_run_token:
        ctx.check_task_run(p, body.task_run_id, "giving back a concurrency slot")
    else:
        require(p, Scope.WORKER, "giving back a concurrency slot")
    ctx.store.release_concurrency_slot(tag, body.task_run_id)
