"""Login, logout and the static files (stylesheet, script, vendored htmx)."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from ...exceptions import AuthenticationError, RateLimited
from ..api.context import ServerContext, context
from .render import HERE, page, page_viewer
from .session import COOKIE, SESSION_SECONDS, Viewer, authenticate_key, check_csrf, viewer, LoginRequired

router = APIRouter(include_in_schema=False)
STATIC = HERE / "static"
_STATIC_FILES = {p.name for p in STATIC.iterdir() if p.is_file() and not p.name.endswith(".md")}


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/runs", status_code=303)


@router.get("/static/{name}")
def static(name: str) -> Response:
    """Our own files only (a fixed list: no path ever reaches the file system from the URL)."""
    if name not in _STATIC_FILES:
        return Response("not found", status_code=404)
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(STATIC / name, media_type=kind, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/login")
def login_form(request: Request, next: str = "/runs", ctx: ServerContext = Depends(context)) -> Response:
    try:
        viewer(request, ctx)
        return RedirectResponse(_safe_next(next), status_code=303)  # already signed in
    except LoginRequired:
        return page(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login")
def login(request: Request, key: str = Form(""), next: str = Form("/runs"),
          ctx: ServerContext = Depends(context)) -> Response:  # fmt: skip
    """Check the key like the API does, then keep it in an HttpOnly SameSite=Strict cookie."""
    try:
        authenticate_key(request, ctx, key.strip())
    except (AuthenticationError, RateLimited) as exc:
        return page(request, "login.html", None, status_code=exc.http_status, next=_safe_next(next), error=str(exc))
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, key.strip(), max_age=SESSION_SECONDS, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")  # fmt: skip
    return response


@router.post("/logout")
async def logout(request: Request, who: Viewer = Depends(page_viewer)) -> Response:
    await check_csrf(request, who)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _safe_next(target: str) -> str:
    """Only local paths (an open redirect would let a link send people elsewhere after login)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/runs"
