"""The FastAPI app: the JSON API under ``/api/v1`` over one embedded store.

    app = create_app(Orchestrator.create(url))          # what `fleetflow server start` serves

Routes are thin (see :mod:`fleetflow.server.api`); the store does the work. A UI router can
be mounted at ``/`` with ``create_app(..., ui_router=...)``: it authenticates with the same
checks, reading the key from the ``fleetflow_session`` cookie instead of the header
(:meth:`~fleetflow.server.api.context.ServerContext.principal`).
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import anyio
from fastapi import APIRouter, FastAPI

from .. import __version__
from ..orchestrator.service import Orchestrator
from .api import catalog, errors, extras, flow_runs, keys, ops, task_runs, usage
from .api.context import ServerContext
from .api.ledger import LedgerMiddleware

THREADS = 128  # store calls run in threads; long-polls do not hold one while they wait


def create_app(store: Orchestrator, *, auth: bool = True, ui_router: APIRouter | None = None) -> FastAPI:
    """The server app for ``store``; ``auth=False`` serves every caller as admin (loopback)."""
    from ..worker import resolve  # noqa: F401 - registers the store's infrastructure check

    ctx = ServerContext(store, auth=auth)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        import asyncio

        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        ctx.notifier.bind(asyncio.get_running_loop())
        sweeping = asyncio.ensure_future(_sweep_forever(ctx))
        try:
            yield
        finally:
            sweeping.cancel()
            await asyncio.gather(sweeping, return_exceptions=True)

    app = FastAPI(title="fleetflow", version=__version__, docs_url="/docs", lifespan=lifespan,
                  description="Flow runs, task runs, logs, blocks, deployments, work pools, workers and API keys.")  # fmt: skip
    app.state.fleetflow = ctx
    errors.install(app)
    for module in (flow_runs, task_runs, catalog, extras, ops, keys, usage):
        app.include_router(module.router)
    if ui_router is not None:
        app.include_router(ui_router)
    app.add_middleware(LedgerMiddleware, ctx=ctx)
    app.add_middleware(_InFlight, ctx=ctx)
    return app


class _InFlight:
    """Counts requests being served (readiness reports it; a drain waits for it to reach 0)."""

    def __init__(self, app: Any, ctx: ServerContext):
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.ctx.in_flight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.ctx.in_flight -= 1


def server_context(app: Any) -> ServerContext:
    """The app's shared state (tests swap its store with ``use_store``)."""
    return app.state.fleetflow


async def _sweep_forever(ctx: ServerContext) -> None:
    """Reconcile expired leases of runs outside any pool (script flows), as every long-running
    fleetflow process does: a flow killed while no worker or scheduler runs still ends CRASHED.
    The sweep runs in a thread (it calls the store synchronously), every ``reconcile_interval``."""
    import asyncio
    import logging

    from ..settings import get_settings
    from ..worker.sweep import sweep_unpooled, sweeper_owner

    owner = sweeper_owner("server")
    while True:
        await asyncio.sleep(get_settings().reconcile_interval)
        try:
            await asyncio.to_thread(lambda: asyncio.run(sweep_unpooled(ctx.store, owner)))
        except Exception as exc:  # noqa: BLE001 - a failed sweep must not stop the server
            logging.getLogger("fleetflow.server").warning("lease sweep failed: %s", exc)
