"""``POST /api/v1/ops/{name}``: the store operations of :data:`fleetflow.orchestrator.operations.OPERATIONS`,
arguments and results converted by the store method's own type hints."""

from __future__ import annotations

import inspect
import typing
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import TypeAdapter

from ...exceptions import ObjectNotFound, PermissionDenied
from ...orchestrator.keys import Scope
from ...orchestrator.operations import OPERATIONS
from ...orchestrator.service import Orchestrator
from .auth import Principal, require
from .context import ServerContext, context
from .flow_runs import who

router = APIRouter(prefix="/api/v1", tags=["worker operations and work queues"])
_SCOPES = {"worker": Scope.WORKER, "admin": Scope.ADMIN, "read": Scope.READ, "run": Scope.WORKER}


@lru_cache(maxsize=None)
def _shape(name: str) -> tuple[inspect.Signature, dict[str, Any]]:
    method = getattr(Orchestrator, name)
    return inspect.signature(method), typing.get_type_hints(method)


def _arguments(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    signature, hints = _shape(name)
    out: dict[str, Any] = {}
    for param in list(signature.parameters.values())[1:]:
        if param.kind is param.VAR_KEYWORD:
            out.update(payload.get(param.name) or {})
        elif param.name in payload:
            out[param.name] = TypeAdapter(hints.get(param.name, Any)).validate_python(payload[param.name])
    return out


def _check(ctx: ServerContext, p: Principal, name: str, args: dict[str, Any]) -> None:
    who_may = OPERATIONS[name]
    if who_may == "run" and p.is_run_token:
        runs = [args["flow_run_id"]] if "flow_run_id" in args else list(args.get("take") or [])
        for run_id in runs:
            ctx.check_run(p, run_id, name.replace("_", " "))
        return
    if p.is_run_token and who_may != "read":
        raise PermissionDenied(f"{name.replace('_', ' ')} needs a worker key; run tokens may not call it")
    require(p, _SCOPES[who_may], name.replace("_", " "))


@router.post("/ops/{name}")
def operation(name: str, payload: dict[str, Any], p: Principal = Depends(who), ctx: ServerContext = Depends(context)) -> Any:
    if name not in OPERATIONS:
        raise ObjectNotFound(f"no operation {name!r}; known: {', '.join(sorted(OPERATIONS))}", kind="operation", name=name)
    args = _arguments(name, payload)
    _check(ctx, p, name, args)
    result = getattr(ctx.store, name)(**args)
    if name in ("claim_launch", "take_over_lease", "begin_launch_attempt"):
        ctx.notifier.notify(f"run:{args.get('flow_run_id') or getattr(args.get('run'), 'id', '')}")
    if name in ("reschedule_flow_run", "relaunch_flow_run") and result is not None:
        ctx.notifier.notify(f"run:{result.id}", f"pool:{result.work_pool_name}")
    _signature, hints = _shape(name)
    return {"result": TypeAdapter(hints.get("return", Any)).dump_python(result, mode="json")}
