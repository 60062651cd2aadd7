"""Errors as JSON: every FleetflowError becomes ``{"code", "message", "attrs"}`` with the
class's HTTP status, so the HTTP client re-raises the same class (see
:func:`fleetflow.exceptions.error_from_payload`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ...exceptions import ConfigurationError, FleetflowError, StoreBusy, error_payload

# PostgreSQL's "try again" conditions: serialization_failure, deadlock_detected,
# lock_not_available (lock_timeout). The transaction was rolled back; a retry can succeed.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def error_response(exc: FleetflowError) -> JSONResponse:
    headers = {"Retry-After": "60"} if exc.http_status == 429 else None
    return JSONResponse(error_payload(exc), status_code=exc.http_status, headers=headers)


async def _fleetflow_error(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(exc)  # type: ignore[arg-type]


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())  # type: ignore[attr-defined]
    return error_response(ConfigurationError(f"invalid request: {problems}. See /docs for the request schema."))


def store_busy(exc: BaseException) -> StoreBusy | None:
    """The retryable error a database exception stands for, or None when it is not one:
    PostgreSQL's conflicts (by SQLSTATE, on the driver's error or SQLAlchemy's wrapper of it)
    and SQLite's "database is locked" once its busy timeout ran out."""
    orig = getattr(exc, "orig", None) or exc
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        what = {"40001": "a serialization conflict", "40P01": "a deadlock", "55P03": "a lock timeout"}[sqlstate]
    elif type(orig).__name__ == "OperationalError" and "database is locked" in str(orig):
        what = "the SQLite file staying locked by another writer"
    else:
        return None
    return StoreBusy(f"the store could not apply this request because of {what} with another request; "
                     "nothing of it was applied: send it again (fleetflow's client retries by itself)")


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    busy = store_busy(exc)
    if busy is None:
        raise exc  # a real fault: the server's 500
    response = error_response(busy)
    response.headers["Retry-After"] = "1"
    return response


def install(app: FastAPI) -> None:
    import sqlite3

    import sqlalchemy as sa

    app.add_exception_handler(FleetflowError, _fleetflow_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for database_error in (sa.exc.DBAPIError, sqlite3.OperationalError):
        app.add_exception_handler(database_error, _database_error)


def dump(value: Any) -> Any:
    """Models (and lists of them) as JSON-ready data."""
    if isinstance(value, list):
        return [dump(v) for v in value]
    dump_fn = getattr(value, "model_dump", None)
    return dump_fn(mode="json") if dump_fn else value
