"""Blocks, deployments, work pools and workers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ... import sealing
from ...exceptions import PermissionDenied
from ...orchestrator.keys import Scope
from ...orchestrator.schemas import BlockDocument, Deployment
from .auth import Principal, require
from .context import ServerContext, context
from .errors import dump
from .flow_runs import who
from .schemas import BlockWrite, ClaimRequest, Heartbeat, WorkPoolUpdate, WorkPoolWrite
from .waiting import poll_until

router = APIRouter(prefix="/api/v1", tags=["blocks, deployments, pools"])


# ---- blocks: sealed here with the server's key, opened only for scopes allowed secrets ------
def _shown(doc: BlockDocument, secrets: bool) -> Any:
    data = sealing.unseal(doc.data) if secrets else sealing.mask(doc.data)
    return dump(doc.model_copy(update={"data": data}))


@router.put("/blocks/{block_type}/{name}")
def save_block_document(
    block_type: str, name: str, body: BlockWrite, p: Principal = Depends(who), ctx: ServerContext = Depends(context)
) -> Any:
    require(p, Scope.ADMIN, "saving a block")
    doc = ctx.store.save_block_document(block_type, name, sealing.seal(body.data), schema_version=body.schema_version,
                                        overwrite=body.overwrite)  # fmt: skip
    return _shown(doc, secrets=False)


@router.get("/blocks/{block_type}/{name}")
def read_block_document(block_type: str, name: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    if p.is_run_token:
        if f"{block_type}/{name}" not in ctx.blocks_for_token(p):
            raise PermissionDenied(
                f"a run token reads only the blocks its deployment and pool reference; {block_type}/{name} is not one."
            )
        return _shown(ctx.store.read_block_document(block_type, name), secrets=True)
    return _shown(ctx.store.read_block_document(block_type, name), secrets=p.sees_secrets())


@router.get("/blocks")
def read_block_documents(block_type: str | None = None, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    require(p, Scope.READ, "listing blocks")
    return [_shown(doc, secrets=False) for doc in ctx.store.read_block_documents(block_type)]


@router.delete("/blocks/{block_type}/{name}", status_code=204)
def delete_block_document(block_type: str, name: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> None:
    require(p, Scope.ADMIN, "deleting a block")
    ctx.store.delete_block_document(block_type, name)


# ---- deployments: an inline infrastructure block's secrets are sealed here too, and opened
# only for workers, admins and the token of a run of that deployment -------------------------
def _deployment_shown(ctx: ServerContext, p: Principal, deployment: Deployment) -> Any:
    if p.is_run_token:
        own = ctx.store.read_flow_run(p.flow_run_id or "").deployment_id == deployment.id
    else:
        own = p.sees_secrets()
    return dump(sealing.open_deployment(deployment) if own else sealing.mask_deployment(deployment))


@router.put("/deployments")
def upsert_deployment(body: Deployment, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    require(p, Scope.ADMIN, "creating or replacing a deployment")
    return _deployment_shown(ctx, p, ctx.store.upsert_deployment(sealing.seal_deployment(body)))


@router.get("/deployments")
def read_deployments(flow_name: str | None = None, work_pool_name: str | None = None,
                     p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:  # fmt: skip
    """Lists never carry secrets (masked): read one deployment for them."""
    found = ctx.store.read_deployments(flow_name=flow_name, work_pool_name=work_pool_name)
    return [dump(sealing.mask_deployment(d)) for d in found]


@router.get("/deployments/by-name")
def read_deployment_by_name(full_name: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    return _deployment_shown(ctx, p, ctx.store.read_deployment_by_name(full_name))


@router.get("/deployments/{deployment_id}")
def read_deployment(deployment_id: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    return _deployment_shown(ctx, p, ctx.store.read_deployment(deployment_id))


@router.delete("/deployments/{deployment_id}", status_code=204)
def delete_deployment(deployment_id: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> None:
    require(p, Scope.ADMIN, "deleting a deployment")
    ctx.store.delete_deployment(deployment_id)


# ---- work pools and workers ---------------------------------------------------------------
@router.post("/work_pools", status_code=201)
def create_work_pool(body: WorkPoolWrite, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    require(p, Scope.ADMIN, "creating a work pool")
    return dump(ctx.store.create_work_pool(body.pool, overwrite=body.overwrite))


@router.get("/work_pools")
def read_work_pools(p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    return dump(ctx.store.read_work_pools())


@router.get("/work_pools/{name}")
def read_work_pool(name: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    return dump(ctx.store.read_work_pool(name))


@router.patch("/work_pools/{name}")
def update_work_pool(name: str, body: WorkPoolUpdate, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    """Pause or resume a pool (Prefect's ``PATCH /work_pools/{name}`` with ``is_paused``): an admin action."""
    require(p, Scope.ADMIN, "pausing a work pool" if body.is_paused else "resuming a work pool")
    pool = ctx.store.set_work_pool_paused(name, body.is_paused)
    ctx.notifier.notify(f"pool:{name}")  # on resume, long-polling workers claim at once
    return dump(pool)


@router.delete("/work_pools/{name}", status_code=204)
def delete_work_pool(name: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> None:
    require(p, Scope.ADMIN, "deleting a work pool")
    ctx.store.delete_work_pool(name)


@router.post("/work_pools/{name}/claim")
async def claim_flow_runs(name: str, body: ClaimRequest, p: Principal = Depends(who),
                          ctx: ServerContext = Depends(context)) -> Any:  # fmt: skip
    """Claim due runs; with ``wait`` it long-polls until one is claimable."""
    require(p, Scope.WORKER, "claiming runs")
    claimed = await poll_until(ctx.notifier, f"pool:{name}",
                               lambda: ctx.store.claim_flow_runs(name, body.worker_name, limit=body.limit, queues=body.queues,
                                                                 lease_owner=body.lease_owner,
                                                                 lease_seconds=body.lease_seconds),
                               lambda runs: bool(runs) or body.limit <= 0, body.wait)  # fmt: skip
    return dump(claimed)


@router.post("/work_pools/{name}/workers/heartbeat", status_code=204)
def worker_heartbeat(name: str, body: Heartbeat, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> None:
    require(p, Scope.WORKER, "sending worker heartbeats")
    ctx.store.worker_heartbeat(name, body.worker_name, hostname=body.hostname, pid=body.pid)


@router.get("/work_pools/{name}/workers")
def read_workers(name: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    return dump(ctx.store.read_workers(name))
