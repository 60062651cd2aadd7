"""API keys (admin only), and health/readiness (health needs no auth)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ...orchestrator.keys import Scope
from .auth import Principal, require
from .context import ServerContext, context
from .errors import dump
from .flow_runs import who
from .schemas import ApiKeyCreate

router = APIRouter(tags=["api keys and health"])


@router.post("/api/v1/api_keys", status_code=201)
def create_api_key(body: ApiKeyCreate, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    """The key is in this response only; the server keeps its hash."""
    require(p, Scope.ADMIN, "creating API keys")
    key, secret = ctx.store.create_api_key(body.name, body.scope, expires=body.expires)
    return {"key": dump(key), "secret": secret}


@router.get("/api/v1/api_keys")
def read_api_keys(p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    require(p, Scope.ADMIN, "listing API keys")
    return dump(ctx.store.read_api_keys())


@router.delete("/api/v1/api_keys/{name}")
def revoke_api_key(name: str, p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    require(p, Scope.ADMIN, "revoking API keys")
    key = ctx.store.revoke_api_key(name)
    ctx.authenticator.forget()  # the revocation applies to the very next request
    return dump(key)


@router.get("/api/health")
def health() -> Any:
    """Liveness: the process answers. The only route without authentication."""
    return {"status": "ok"}


@router.get("/api/ready")
def ready(p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    """Readiness: the database answers a query. ``in_flight``: other requests being served."""
    try:
        with ctx.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
    return {"status": "ready", "in_flight": max(0, ctx.in_flight - 1)}
