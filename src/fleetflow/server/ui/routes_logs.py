"""A run's logs: filtered pages (level, text, newest first for "jump to latest"), the live
tail over Server-Sent Events, and the whole log as a text download.

The live tail sends only what is new after the last id the page has (one indexed query per
tick, never the whole log again), so a long log does not pin the browser's CPU.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from ..api.context import ServerContext, context
from . import views
from .render import page, page_viewer, templates
from .routes_runs import LOG_PAGE
from .session import Viewer

router = APIRouter(include_in_schema=False)
TICK_SECONDS = 0.5
DOWNLOAD_PAGE = 5_000


@router.get("/runs/{flow_run_id}/logs", response_class=HTMLResponse)
def logs(request: Request, flow_run_id: str, level: str = "", q: str = "", who: Viewer = Depends(page_viewer),
         ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    """The newest lines matching the filter (the log pane's content)."""
    records = ctx.store.search_logs(flow_run_id, min_level=views.LEVELS.get(level.upper(), 0), text=q.strip() or None,
                                    limit=LOG_PAGE, latest=True)  # fmt: skip
    names = {t.id: t.name for t in ctx.store.browse_task_runs(flow_run_id)}
    return page(request, "_log_lines.html", who, logs=records, task_names=names, filtered=bool(level or q))


@router.get("/runs/{flow_run_id}/logs.txt")
def download(flow_run_id: str, who: Viewer = Depends(page_viewer), ctx: ServerContext = Depends(context)) -> Response:
    """Every line, in pages, as one text file."""
    run = ctx.store.read_flow_run(flow_run_id)
    names = {t.id: t.name for t in ctx.store.browse_task_runs(flow_run_id)}

    def lines() -> Iterator[bytes]:
        after = 0
        while True:
            batch = ctx.store.read_logs(flow_run_id=flow_run_id, after_id=after, limit=DOWNLOAD_PAGE)
            if not batch:
                return
            yield ("\n".join(views.log_line(r, names) for r in batch) + "\n").encode()
            after = batch[-1].id or after

    filename = f"{run.flow_name}-{run.name}-{run.id[:8]}.log".replace('"', "")
    return StreamingResponse(lines(), media_type="text/plain; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip


@router.get("/runs/{flow_run_id}/events")
async def events(request: Request, flow_run_id: str, after: int = 0, level: str = "", q: str = "",
                 who: Viewer = Depends(page_viewer), ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    """SSE: ``log`` events carry rendered new lines, ``state`` events the run's new state; the
    stream ends (event ``end``) once the run is final and its last lines were sent."""
    return EventSourceResponse(_tail(request, ctx, flow_run_id, after, level, q), ping=15)


async def _tail(request: Request, ctx: ServerContext, flow_run_id: str, after: int, level: str, q: str) -> AsyncIterator[dict[str, Any]]:
    min_level, text = views.LEVELS.get(level.upper(), 0), q.strip() or None
    seen_state, final_ticks = None, 0
    while not await request.is_disconnected():
        run = await run_in_threadpool(ctx.store.read_flow_run, flow_run_id)
        records = await run_in_threadpool(lambda: ctx.store.search_logs(flow_run_id, min_level=min_level, text=text,
                                                                        after_id=after, limit=LOG_PAGE))  # fmt: skip
        if records:
            after = records[-1].id or after
            names = await run_in_threadpool(lambda: {t.id: t.name for t in ctx.store.browse_task_runs(flow_run_id)})
            html = templates.get_template("_log_lines.html").render(logs=records, task_names=names, v=views, filtered=True)
            yield {"event": "log", "data": html, "id": str(after)}
        state = (run.state.type.value, run.state.name, run.state.timestamp.isoformat()) if run.state else None
        if state != seen_state:
            seen_state = state
            yield {"event": "state", "data": state[0] if state else "NEW"}
        final_ticks = final_ticks + 1 if run.state is not None and run.state.is_final and not records else 0
        if final_ticks >= 3:  # the engine ships its last lines just after the final state
            yield {"event": "end", "data": "final"}
            return
        await asyncio.sleep(TICK_SECONDS)
