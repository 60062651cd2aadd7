"""Deployments (Quick run, Custom run), work pools with their workers, and blocks."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ... import sealing
from ...exceptions import ConfigurationError, FleetflowError, ObjectNotFound
from ...orchestrator.keys import Scope
from ...orchestrator.schemas import Deployment
from ...states import StateType
from ..api.context import ServerContext, context
from . import forms, usage_views, views
from .render import audit, error_page, guarded, page, page_viewer
from .session import Viewer, check_csrf, require_scope

router = APIRouter(include_in_schema=False)
COUNT_LIMIT = 10_000


@router.get("/deployments", response_class=HTMLResponse)
def deployments_page(request: Request, who: Viewer = Depends(page_viewer), ctx: ServerContext = Depends(context)) -> Response:
    deployments = ctx.store.read_deployments()
    recent = ctx.store.recent_runs_of_deployments([d.id for d in deployments], per=10)
    return page(request, "deployments.html", who, deployments=deployments, recent=recent,
                advice=usage_views.recommendations(ctx.store, deployments), started=request.query_params.get("started"))


def _deployment(ctx: ServerContext, deployment_id: str) -> Deployment:
    return ctx.store.read_deployment(deployment_id)


@router.post("/deployments/{deployment_id}/quick-run")
async def quick_run(request: Request, deployment_id: str, who: Viewer = Depends(page_viewer),
                    ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    """A run with the deployment's defaults."""
    run, refused = await guarded(request, who, Scope.RUN, "starting a run from a deployment",
                                 ctx.store.create_flow_run_from_deployment, deployment_id)
    if refused:
        return refused
    _started(ctx, who, run)
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


def _started(ctx: ServerContext, who: Viewer, run: Any) -> None:
    ctx.notifier.notify(f"run:{run.id}", f"pool:{run.work_pool_name}")
    audit(ctx, who, "create_flow_run_from_deployment", run.id, 201)


@router.get("/deployments/{deployment_id}/run", response_class=HTMLResponse)
def custom_run_form(request: Request, deployment_id: str, who: Viewer = Depends(page_viewer),
                    ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    try:
        deployment = _deployment(ctx, deployment_id)
    except ObjectNotFound as exc:
        return error_page(request, who, exc)
    return page(request, "custom_run.html", who, deployment=deployment, params=forms.parameter_fields(deployment),
                overrides=forms.override_fields(deployment), error=None)  # fmt: skip


@router.post("/deployments/{deployment_id}/run")
async def custom_run(request: Request, deployment_id: str, who: Viewer = Depends(page_viewer),
                     ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    """Create the run, or show the form again with the error next to its field (no run made)."""
    await check_csrf(request, who)
    require_scope(who, Scope.RUN, "starting a run from a deployment")
    posted = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    deployment = await run_in_threadpool(_deployment, ctx, deployment_id)
    params, overrides = forms.parameter_fields(deployment, posted), forms.override_fields(deployment, posted)
    values, infra = forms.parse_parameters(params), forms.parse_overrides(overrides)
    error = None
    if not any(f.error for f in overrides):
        try:
            run = await run_in_threadpool(lambda: ctx.store.create_flow_run_from_deployment(
                deployment.id, parameters=values, infra_overrides=infra or None))  # fmt: skip
            _started(ctx, who, run)
            return RedirectResponse(f"/runs/{run.id}", status_code=303)
        except ConfigurationError as exc:
            if not forms.place_error(exc.field, params, overrides, str(exc)):
                error = str(exc)
        except FleetflowError as exc:
            error = str(exc)
    return page(request, "custom_run.html", who, status_code=422, deployment=deployment, params=params,
                overrides=overrides, error=error)  # fmt: skip


# ---- work pools and workers ---------------------------------------------------------------
@router.get("/work-pools", response_class=HTMLResponse)
def pools_page(request: Request, who: Viewer = Depends(page_viewer), ctx: ServerContext = Depends(context)) -> Response:
    pools = []
    for pool in ctx.store.read_work_pools():
        queued = ctx.store.count_flow_runs(state_types=[StateType.SCHEDULED], work_pool_name=pool.name, limit=COUNT_LIMIT)
        running = ctx.store.count_flow_runs(state_types=[StateType.PENDING, StateType.RUNNING, StateType.CANCELLING],
                                            work_pool_name=pool.name, limit=COUNT_LIMIT)  # fmt: skip
        workers = [(w, views.worker_health(w.last_heartbeat)) for w in ctx.store.read_workers(pool.name)]
        pools.append({"pool": pool, "queued": queued, "running": running, "workers": workers, "paused": pool.is_paused})
    return page(request, "pools.html", who, pools=pools, count_limit=COUNT_LIMIT)


@router.post("/work-pools/{name}/{action}")
async def pause_or_resume(request: Request, name: str, action: str, who: Viewer = Depends(page_viewer),
                          ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    """Pause (no worker claims the pool's runs; they stay SCHEDULED) or resume a pool: an admin action."""
    await check_csrf(request, who)
    if action not in ("pause", "resume"):
        return Response("unknown action: use pause or resume", status_code=404)
    require_scope(who, Scope.ADMIN, f"{action.rstrip('e')}ing a work pool")
    try:
        await run_in_threadpool(ctx.store.set_work_pool_paused, name, action == "pause")
    except FleetflowError as exc:
        return error_page(request, who, exc)
    if action == "resume":
        ctx.notifier.notify(f"pool:{name}")  # long-polling workers claim at once
    await run_in_threadpool(audit, ctx, who, f"{action}_work_pool", name, 200)
    return RedirectResponse("/work-pools", status_code=303)


# ---- blocks -------------------------------------------------------------------------------
@router.get("/blocks", response_class=HTMLResponse)
def blocks_page(request: Request, who: Viewer = Depends(page_viewer), ctx: ServerContext = Depends(context)) -> Response:
    by_type: dict[str, list[Any]] = {}
    for doc in ctx.store.read_block_documents():
        by_type.setdefault(doc.block_type, []).append(doc)
    return page(request, "blocks.html", who, by_type=dict(sorted(by_type.items())))


@router.get("/blocks/{block_type}/{name}", response_class=HTMLResponse)
def block_page(request: Request, block_type: str, name: str, who: Viewer = Depends(page_viewer),
               ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    """A block's fields with every secret masked: the UI never unseals anything."""
    try:
        doc = ctx.store.read_block_document(block_type, name)
    except ObjectNotFound as exc:
        return error_page(request, who, exc)
    return page(request, "block.html", who, doc=doc, fields=_masked_fields(sealing.mask(doc.data)))


def _masked_fields(data: Any) -> list[tuple[str, str]]:
    """(name, shown value) pairs; masked secrets become ``********``."""
    def shown(value: Any) -> str:
        if isinstance(value, dict) and set(value) == {sealing.OPEN_MARKER}:
            return str(value[sealing.OPEN_MARKER])
        text = json.dumps(_unmark(value), default=str)
        return text[1:-1] if text.startswith('"') else text

    return [(k, shown(v)) for k, v in (data or {}).items()]


def _unmark(value: Any) -> Any:
    """Nested masked secrets as the plain mask text."""
    if isinstance(value, dict):
        if set(value) == {sealing.OPEN_MARKER}:
            return value[sealing.OPEN_MARKER]
        return {k: _unmark(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unmark(v) for v in value]
    return value
