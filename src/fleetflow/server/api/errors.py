"""Errors as JSON: every FleetflowError becomes ``{"code", "message", "attrs"}`` with the
class's HTTP status, so the HTTP client re-raises the same class (see
:func:`fleetflow.exceptions.error_from_payload`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ...exceptions import ConfigurationError, FleetflowError, error_payload


def error_response(exc: FleetflowError) -> JSONResponse:
    headers = {"Retry-After": "60"} if exc.http_status == 429 else None
    return JSONResponse(error_payload(exc), status_code=exc.http_status, headers=headers)


async def _fleetflow_error(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(exc)  # type: ignore[arg-type]


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())  # type: ignore[attr-defined]
    return error_response(ConfigurationError(f"invalid request: {problems}. See /docs for the request schema."))


def install(app: FastAPI) -> None:
    app.add_exception_handler(FleetflowError, _fleetflow_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


def dump(value: Any) -> Any:
    """Models (and lists of them) as JSON-ready data."""
    if isinstance(value, list):
        return [dump(v) for v in value]
    dump_fn = getattr(value, "model_dump", None)
    return dump_fn(mode="json") if dump_fn else value
