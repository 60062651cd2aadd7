"""The Runs page and the flow-run page (header, sub-flow tree, timeline, task runs, states,
result, logs), plus Cancel and Retry."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ...exceptions import InvalidStateTransition, ObjectNotFound
from ...orchestrator.keys import Scope
from ...orchestrator.runs import page_cursor
from ...states import StateType, utcnow
from ..api.context import ServerContext, context
from . import timeline, usage_views, views
from .render import audit, error_page, guarded, page, page_viewer
from .session import Viewer

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
COUNT_LIMIT = 10_000
MAX_CHILDREN = 500
LOG_PAGE = 150  # log lines a page starts with (the live tail, search and download reach the rest)
TASK_PAGE = 50  # task-run rows per page: a 1,000-task run stays a light page


class RunFilters:
    """The Runs page's filters, from the query string (unknown states are ignored)."""

    def __init__(self, state: list[str] | None = Query(default=None), flow: str = "", deployment: str = "",
                 pool: str = "", tag: str = "", window: str = views.DEFAULT_WINDOW, cursor: str = ""):  # fmt: skip
        self.states = [s.upper() for s in (state or []) if s.upper() in StateType.__members__]
        self.flow, self.deployment, self.pool, self.tag = flow.strip(), deployment.strip(), pool.strip(), tag.strip()
        self.window = window if window in views.WINDOWS else views.DEFAULT_WINDOW
        self.cursor = cursor

    def query(self, **change: Any) -> str:
        values = {"state": self.states, "flow": self.flow, "deployment": self.deployment, "pool": self.pool,
                  "tag": self.tag, "window": self.window, **change}  # fmt: skip
        return urlencode({k: v for k, v in values.items() if v}, doseq=True)

    def store_filters(self, deployment_id: str | None) -> dict[str, Any]:
        return {"state_types": [StateType(s) for s in self.states] or None, "flow_name": self.flow or None,
                "deployment_id": deployment_id, "work_pool_name": self.pool or None, "tag": self.tag or None,
                "created_after": views.window_start(self.window)}  # fmt: skip


def _runs_table(ctx: ServerContext, f: RunFilters) -> dict[str, Any]:
    deployments = {d.id: d.full_name for d in ctx.store.read_deployments()}
    deployment_id, problem = None, None
    if f.deployment:
        deployment_id = next((i for i, n in deployments.items() if f.deployment in (n, i)), None)
        if deployment_id is None:
            problem = f"No deployment {f.deployment!r}; deployments are named 'flow/name'."
    filters = f.store_filters(deployment_id)
    runs = [] if problem else ctx.store.browse_flow_runs(**filters, cursor=f.cursor or None, limit=PAGE_SIZE)
    count = 0 if problem else ctx.store.count_browsed_flow_runs(limit=COUNT_LIMIT, **filters)
    more = len(runs) == PAGE_SIZE
    return {"runs": runs, "deployments": deployments, "count": count, "count_limit": COUNT_LIMIT, "problem": problem,
            "next": f.query(cursor=page_cursor(runs[-1])) if more else None, "f": f, "now": utcnow()}  # fmt: skip


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, f: RunFilters = Depends(), who: Viewer = Depends(page_viewer),
              ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    pools = [p.name for p in ctx.store.read_work_pools()]
    return page(request, "runs.html", who, pools=pools, states=list(StateType), **_runs_table(ctx, f))


@router.get("/runs/table", response_class=HTMLResponse)
def runs_table(request: Request, f: RunFilters = Depends(), who: Viewer = Depends(page_viewer),
               ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    """The table alone: the Runs page re-fetches it every few seconds (first page only)."""
    return page(request, "_runs_table.html", who, **_runs_table(ctx, f))


# ---- one flow run -----------------------------------------------------------------------------
def _run_facts(ctx: ServerContext, flow_run_id: str) -> dict[str, Any]:
    """The header's records: the run, its deployment, its parent, its launch handle."""
    run = ctx.store.read_flow_run(flow_run_id)
    deployment = None
    if run.deployment_id:
        try:
            deployment = ctx.store.read_deployment(run.deployment_id)
        except ObjectNotFound:
            deployment = None
    parent = ctx.store.read_flow_run(run.parent_flow_run_id) if run.parent_flow_run_id else None
    return {"run": run, "deployment": deployment, "parent": parent, "handle": views.handle(run), "now": utcnow()}


def _run_view(ctx: ServerContext, flow_run_id: str) -> dict[str, Any]:
    """The header alone (its live refresh): no sub-flow tree, so no pipeline total."""
    view = _run_facts(ctx, flow_run_id)
    return {**view, "usage": usage_views.run_lines(ctx.store, [view["run"]])[flow_run_id]}


def _children(ctx: ServerContext, flow_run_id: str) -> dict[str, Any]:
    children = _read_children(ctx, flow_run_id)
    return {"children": children, "grandchildren": ctx.store.count_children([c.id for c in children]),
            "usages": usage_views.run_lines(ctx.store, children)}


def _read_children(ctx: ServerContext, flow_run_id: str) -> list[Any]:
    return ctx.store.read_flow_runs(parent_flow_run_id=flow_run_id, limit=MAX_CHILDREN)[::-1]  # oldest first


def _run_and_tree(ctx: ServerContext, flow_run_id: str) -> dict[str, Any]:
    """The header and the first level of the sub-flow tree, with the pipeline's total: the
    run's and its children's usage are read once (one query), and only the subtrees of
    children that have children are walked for the total."""
    view = _run_facts(ctx, flow_run_id)
    run, children = view["run"], _read_children(ctx, flow_run_id)
    grandchildren = ctx.store.count_children([c.id for c in children])
    usages = usage_views.run_lines(ctx.store, [run, *children])
    costs = [line.item for line in usages.values()]
    if len(children) < MAX_CHILDREN:
        pipeline = usage_views.pipeline_total(ctx.store, costs, [c for c in children if grandchildren.get(c.id)])
    else:  # the page shows the first MAX_CHILDREN children only: the total walks the rest too
        pipeline = usage_views.pipeline_total(ctx.store, costs[:1], [run])
    return {**view, "usage": usages[run.id], "pipeline": pipeline, "children": children, "grandchildren": grandchildren,
            "usages": usages}


@router.get("/runs/{flow_run_id}", response_class=HTMLResponse)
def run_page(request: Request, flow_run_id: str, who: Viewer = Depends(page_viewer),
             ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    try:
        view = _run_and_tree(ctx, flow_run_id)
    except ObjectNotFound as exc:
        return error_page(request, who, exc)
    task_runs = ctx.store.browse_task_runs(flow_run_id)
    logs = ctx.store.search_logs(flow_run_id, limit=LOG_PAGE, latest=True)
    return page(request, "run.html", who, **view, task_runs=task_runs,
                states=ctx.store.read_flow_run_states(flow_run_id)[::-1], logs=logs,
                task_names={t.id: t.name for t in task_runs}, result=views.result_preview(view["run"].state),
                timeline=timeline.svg(task_runs, view["children"]), last_log_id=logs[-1].id if logs else 0,
                levels=views.LEVELS, task_page=TASK_PAGE, total=len(task_runs), run_id=flow_run_id)  # fmt: skip


@router.get("/runs/{flow_run_id}/task-runs", response_class=HTMLResponse)
def task_rows(request: Request, flow_run_id: str, offset: int = Query(default=0, ge=0), who: Viewer = Depends(page_viewer),
              ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    """More rows of the task-runs table (its "Show more" button)."""
    task_runs = ctx.store.browse_task_runs(flow_run_id)
    return page(request, "_task_rows.html", who, rows=task_runs[offset:offset + TASK_PAGE], offset=offset,
                total=len(task_runs), task_page=TASK_PAGE, run_id=flow_run_id, now=utcnow())  # fmt: skip


@router.get("/runs/{flow_run_id}/header", response_class=HTMLResponse)
def run_header(request: Request, flow_run_id: str, who: Viewer = Depends(page_viewer),
               ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    return page(request, "_run_header.html", who, **_run_view(ctx, flow_run_id))


@router.get("/runs/{flow_run_id}/children", response_class=HTMLResponse)
def run_children(request: Request, flow_run_id: str, who: Viewer = Depends(page_viewer),
                 ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    """One level of the sub-flow tree (a child row expands by fetching this for itself)."""
    return page(request, "_tree.html", who, **_children(ctx, flow_run_id), now=utcnow())


@router.post("/runs/{flow_run_id}/cancel")
async def cancel(request: Request, flow_run_id: str, who: Viewer = Depends(page_viewer),
                 ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    """Cancel the run and every unfinished descendant (their infrastructure is stopped too)."""
    touched, refused = await guarded(request, who, Scope.RUN, "cancelling a flow run", _cancel, ctx, flow_run_id)
    if refused:
        return refused
    ctx.notifier.notify(*[f"run:{i}" for i in touched])
    await run_in_threadpool(audit, ctx, who, "cancel_flow_run", flow_run_id, 200)
    return RedirectResponse(f"/runs/{flow_run_id}", status_code=303)


def _cancel(ctx: ServerContext, flow_run_id: str) -> list[str]:
    from ...cancellation import cancel_flow_run

    run = ctx.store.read_flow_run(flow_run_id)
    if run.state is not None and run.state.is_final:
        raise InvalidStateTransition(f"flow run {run.name!r} is already {run.state.type.value}; there is nothing to cancel",
                                     current=run.state.type.value, proposed=StateType.CANCELLED.value)  # fmt: skip
    return cancel_flow_run(ctx.store, flow_run_id, reason="cancelled from the web UI")


@router.post("/runs/{flow_run_id}/retry")
async def retry(request: Request, flow_run_id: str, who: Viewer = Depends(page_viewer),
                ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    """Relaunch a finished deployment run as a new attempt of the same flow run."""
    again, refused = await guarded(request, who, Scope.RUN, "retrying a flow run", _retry, ctx, flow_run_id)
    if refused:
        return refused
    ctx.notifier.notify(f"run:{again.id}", f"pool:{again.work_pool_name}")
    await run_in_threadpool(audit, ctx, who, "retry_flow_run", flow_run_id, 200)
    return RedirectResponse(f"/runs/{flow_run_id}", status_code=303)


def _retry(ctx: ServerContext, flow_run_id: str) -> Any:
    run = ctx.store.read_flow_run(flow_run_id)
    was = run.state.type.value if run.state else "new"
    if not run.deployment_id:
        raise InvalidStateTransition(f"flow run {run.name!r} did not come from a deployment, so no worker can relaunch it; "
                                     "run its script again instead", current=was, proposed="SCHEDULED")  # fmt: skip
    again = ctx.store.relaunch_flow_run(run.id, f"retried from the web UI (was {was})", not_before=utcnow(), from_final=True)
    if again is None:
        raise InvalidStateTransition(f"flow run {run.name!r} is {was}, not finished; only a finished run can be retried "
                                     "(cancel it first)", current=was, proposed="SCHEDULED")  # fmt: skip
    return again
