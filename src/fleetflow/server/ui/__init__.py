"""The web UI: server-rendered pages (Jinja2), htmx for partial updates, Server-Sent Events
for live logs and states, served by the same app as the JSON API at ``/``.

    app = create_app(store, ui_router=ui_router())       # what `fleetflow server start` serves

No Node build step and no CDN: our stylesheet and script and a vendored htmx 2.0.x ship as
package data (see ``static/VENDORED.md``). Routes are thin: view models are pure functions
(:mod:`.views`, :mod:`.forms`, :mod:`.timeline`); the store's own validators refuse bad input.
"""

from __future__ import annotations

from fastapi import APIRouter


def ui_router() -> APIRouter:
    """Every UI route, to mount at ``/``."""
    from . import routes_auth, routes_catalog, routes_logs, routes_runs

    router = APIRouter(include_in_schema=False)
    for module in (routes_auth, routes_runs, routes_logs, routes_catalog):
        router.include_router(module.router)
    return router
