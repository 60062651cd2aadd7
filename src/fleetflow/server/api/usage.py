"""Flow run usage records: the runner writes its run's record (a run token may write only its
own run's), keys read them; see :mod:`fleetflow.usage`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ...orchestrator.keys import Scope
from ...orchestrator.usage import MAX_IDS
from ...usage.model import RunUsage
from .auth import Principal, require
from .context import ServerContext, context
from .flow_runs import who

router = APIRouter(prefix="/api/v1", tags=["usage"])


class UsageQuery(BaseModel):
    flow_run_ids: list[str] = Field(max_length=MAX_IDS, description="Runs whose usage records to read.")


@router.put("/usage/flow_runs/{flow_run_id}", status_code=204)
def write_flow_run_usage(flow_run_id: str, body: RunUsage, p: Principal = Depends(who),
                         ctx: ServerContext = Depends(context)) -> None:  # fmt: skip
    ctx.check_run(p, flow_run_id, "recording a run's usage")
    ctx.store.write_flow_run_usage(flow_run_id, body.model_dump(mode="json"))


@router.get("/usage/flow_runs/{flow_run_id}")
def read_flow_run_usage(flow_run_id: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    ctx.check_run_read(p, ctx.store.read_flow_run(flow_run_id))
    return {"usage": ctx.store.read_flow_run_usage(flow_run_id)}


@router.post("/usage/flow_runs")
def read_flow_run_usages(body: UsageQuery, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    require(p, Scope.READ, "reading usage records of many runs")
    return {"usages": ctx.store.read_flow_run_usages(body.flow_run_ids)}
