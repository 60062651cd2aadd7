"""Mutating requests: applied once per client request id, and audited.

Every mutating request from :class:`fleetflow.client.http.HTTPClient` carries
``X-Request-Id``. The first response (status < 500) is remembered under a hash of the
caller's credentials and that id; a retry of the same request gets the remembered response
(header ``X-Request-Replayed: true``) instead of being applied again.

Every response is remembered in the store (:mod:`fleetflow.orchestrator.ledger`, a day), so a
retry that reaches a restarted server -- one that crashed after applying a request or a batch,
before the client saw the answer -- is answered from there, not applied twice; the last ten
minutes are also kept in memory, so most replays cost no query. The ledger row is written
right after the request's own writes committed (the store has no group commit on the server):
a crash between the two is the one window left, and the client sees no answer for it either.

By volume, two tiers of auditing: the stream a running flow writes (task runs, logs, batches of
both, cache, claims, heartbeats -- several requests per task) is not audited; everything else
(runs, states of flow runs, blocks, deployments, pools, keys) is written to the audit table
(who, action, target, status).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import ServerContext, _Bounded

MEMORY_SECONDS = 600.0
_STREAM = re.compile(r"^/api/v1/(task_runs|batch$|logs|cache/|work_pools/[^/]+/(claim|workers/heartbeat)|concurrency_limits/[^/]+/(acquire|release)|ops/(renew_leases|acquire_lease|claim_launch))")
_MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def is_stream(path: str) -> bool:
    return bool(_STREAM.match(path))


class LedgerMiddleware:
    """ASGI middleware implementing the module's contract."""

    def __init__(self, app: ASGIApp, ctx: ServerContext):
        self.app, self.ctx = app, ctx
        self._memory: _Bounded = _Bounded()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _MUTATING or not scope["path"].startswith("/api/v1/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id")
        audited = not is_stream(scope["path"])
        key = _key(headers.get(b"authorization", b""), request_id) if request_id else None
        if key is not None and (hit := await self._recall(key)) is not None:
            await _replay(send, *hit)
            return
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, capture)
        status, body = _status_and_body(messages)
        if key is not None and status < 500:
            await self._remember(key, _actor(scope), status, body)
        for message in messages:
            await send(message)
        if audited:
            await run_in_threadpool(self._audit, scope, status)

    async def _recall(self, key: str) -> tuple[int, Any] | None:
        hit = self._memory.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2]
        return await run_in_threadpool(self.ctx.store.recall_request, key)

    async def _remember(self, key: str, actor: str, status: int, body: Any) -> None:
        self._memory.put(key, (time.monotonic() + MEMORY_SECONDS, status, body))
        await run_in_threadpool(partial(self.ctx.store.remember_request, key, status, body, key_name=actor))

    def _audit(self, scope: Scope, status: int) -> None:
        self.ctx.store.record_audit(_actor(scope), f"{scope['method']} {_route_template(scope)}", scope["path"], status)


def _actor(scope: Scope) -> str:
    """The name of the key (or run token) that made the request, once the route authenticated it."""
    principal = scope.get("state", {}).get("principal")
    return principal.name if principal is not None else "(unauthenticated)"


def _key(authorization: bytes, request_id: bytes) -> str:
    return hashlib.sha256(authorization + b"\0" + request_id).hexdigest()


def _status_and_body(messages: list[Message]) -> tuple[int, Any]:
    status = next((m["status"] for m in messages if m["type"] == "http.response.start"), 500)
    raw = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


async def _replay(send: Send, status: int, body: Any) -> None:
    raw = b"" if body is None else json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"x-request-replayed", b"true"),
               (b"content-length", str(len(raw)).encode())]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", scope["path"])
