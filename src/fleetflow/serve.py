"""``flow.serve(...)``: register a deployment of a flow and launch its runs from this process.

Runs execute as subprocesses importing the code from the project folder (no bundle upload),
so ``fleetflow deployment run 'flow/name'`` from another terminal runs it. Called from plain
code it blocks until Ctrl-C; called inside a running event loop it returns a coroutine, so
``await flow.serve(...)`` works (``asyncio.run`` cannot be nested in a running loop).
"""

from __future__ import annotations

import asyncio
from typing import Any, Coroutine, Iterable

from .deployments import Deployment
from .scheduler import schedule_deployment
from .worker import Worker


def prepare(flow: Any, name: str, *, work_pool_name: str | None = None, parameters: dict[str, Any] | None = None,
            schedule: dict[str, Any] | None = None, tags: Iterable[str] = (), limit: int | None = None,
            description: str | None = None, version: str | int | None = None) -> Worker:
    """Apply the deployment (and its first schedule slots) and return the worker that serves it."""
    pool = work_pool_name or f"serve-{flow.name}-{name}"
    deployment = Deployment.build_from_flow(
        flow, name, work_pool_name=pool, parameters=parameters or {}, schedule=schedule, tags=list(tags),
        description=description, version=version,
    )
    deployment_id = deployment.apply(upload=False)
    worker = Worker(pool, limit=limit)
    if schedule:
        schedule_deployment(worker.client, worker.client.read_deployment(deployment_id))
    print(f"Serving deployment '{flow.name}/{name}' (pool {pool!r}). Trigger a run from another terminal:\n"
          f"  fleetflow deployment run '{flow.name}/{name}'\nPress Ctrl-C to stop.", flush=True)
    return worker


async def serve_async(flow: Any, name: str, **options: Any) -> None:
    """Serve until the worker is stopped (SIGTERM/SIGINT or ``worker.stop()``)."""
    worker = prepare(flow, name, **options)
    await worker.run()


def serve(flow: Any, name: str, **options: Any) -> Coroutine[Any, Any, None] | None:
    """Block serving, or return the coroutine when an event loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(serve_async(flow, name, **options))
        return None
    return serve_async(flow, name, **options)
