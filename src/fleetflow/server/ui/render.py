"""Templates, the page guard and the small helpers every UI route shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from ... import __version__
from ...exceptions import FleetflowError
from ..api.context import ServerContext, context
from . import views
from .session import CSRF_FIELD, LoginRequired, Viewer, viewer

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(v=views, version=__version__, csrf_field=CSRF_FIELD)
templates.env.filters["q"] = lambda value: quote(str(value), safe="")


def page_viewer(request: Request, ctx: ServerContext = Depends(context)) -> Viewer:
    """The signed-in viewer; otherwise a redirect to /login (htmx requests get HX-Redirect,
    which makes htmx load the login page instead of swapping it into a fragment)."""
    try:
        return viewer(request, ctx)
    except LoginRequired:
        target = "/login?" + urlencode({"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")})
        if request.headers.get("hx-request"):
            raise HTTPException(status_code=401, headers={"HX-Redirect": target}) from None
        raise HTTPException(status_code=303, headers={"Location": target}) from None


def page(request: Request, name: str, who: Viewer | None, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Render template ``name`` with the viewer and ``values``."""
    response = templates.TemplateResponse(request, name, {"who": who, **values}, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"  # pages carry live state and the CSRF token
    return response


def error_page(request: Request, who: Viewer | None, exc: FleetflowError) -> HTMLResponse:
    return page(request, "error.html", who, status_code=exc.http_status, error=exc)


def audit(ctx: ServerContext, who: Viewer, action: str, target: str | None, status: int) -> None:
    """UI actions go to the audit log like the JSON API's (who, what, on what)."""
    ctx.store.record_audit(f"ui:{who.principal.name}", action, target, status)
