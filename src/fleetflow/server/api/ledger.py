"""Mutating requests: applied once per client request id, and audited.

Every mutating request from :class:`fleetflow.client.http.HTTPClient` carries
``X-Request-Id``. The first response (status < 500) is remembered under a hash of the
caller's credentials and that id; a retry of the same request gets the remembered response
(header ``X-Request-Replayed: true``) instead of being applied again.

The store is looked up before applying only for a request marked ``X-Request-Retry: 1`` (the
client's retries and re-sent batches); a first attempt skips that read. Skipping it is safe
because the look-up is not what guards against a second application -- the ledger row's key
is: a request whose id is already recorded (a client that crashed and reused an id, or sent a
retry unmarked) conflicts when its own row is inserted in its transaction, and is rolled back
and answered with the recorded response. The marker only saves executing a retry to undo it.

Every response is remembered in the store (:mod:`fleetflow.orchestrator.ledger`, a day), so a
retry that reaches a restarted server -- one that crashed after applying a request or a batch,
before the client saw the answer -- is answered from there, not applied twice; the last ten
minutes are also kept in memory, so most replays cost no query.

Exactly once, across a crash at any point: a request with an id runs in one store transaction
(:mod:`fleetflow.orchestrator.request_tx`) -- its writes, its ledger row and its audit row are
committed together, before the response is sent. Killed before that COMMIT, the server leaves
nothing and the retry applies the request once; killed after it, the retry is replayed. Two
attempts in flight at once (a client that timed out and retried) cannot both commit: the second
one's ledger row conflicts, its writes are rolled back and it answers with the first's response.
A 5xx is rolled back whole (nothing of it stays; the client may retry it). Requests without an
id (not from fleetflow's client) are applied as they come.

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

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...exceptions import ConfigurationError, error_payload
from ...faults import fault
from ...orchestrator.request_tx import RequestTransaction, outside_request, request_transaction
from .context import ServerContext, _Bounded

MEMORY_SECONDS = 600.0
COMMIT_THREADS = 32
_STREAM = re.compile(r"^/api/v1/(task_runs|batch$|logs|cache/|work_pools/[^/]+/(claim|workers/heartbeat)|concurrency_limits/[^/]+/(acquire|release)|ops/(renew_leases|acquire_lease|claim_launch))")
_MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def is_stream(path: str) -> bool:
    return bool(_STREAM.match(path))


class LedgerMiddleware:
    """ASGI middleware implementing the module's contract."""

    def __init__(self, app: ASGIApp, ctx: ServerContext):
        self.app, self.ctx = app, ctx
        self._memory: _Bounded = _Bounded()
        self._commits: Any = None  # the commit threads' own limiter (see _in_commit_thread)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _MUTATING or not scope["path"].startswith("/api/v1/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id")
        if not request_id:
            await self._unrecorded(scope, receive, send)
            return
        key = _key(headers.get(b"authorization", b""), request_id)
        if (hit := await self._recall(key, retry=headers.get(b"x-request-retry") == b"1")) is not None:
            await _replay(send, *hit)
            return
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        with request_transaction(self.ctx.store) as tx:
            try:
                await self.app(scope, receive, capture)
                status, body = _status_and_body(messages)
                outcome = await self._in_commit_thread(self._commit, tx, key, scope, status, body)
            finally:
                if not tx.ended:  # the app raised, or this task was cancelled: undo the writes
                    with anyio.CancelScope(shield=True):
                        await self._in_commit_thread(partial(tx.close, commit=False))
        if outcome is not None:  # an earlier attempt of this request committed first
            await _replay(send, *outcome)
            return
        if status < 500:
            self._memory.put(key, (time.monotonic() + MEMORY_SECONDS, status, body))
        for message in messages:
            await send(message)

    def _commit(self, tx: RequestTransaction, key: str, scope: Scope, status: int, body: Any) -> tuple[int, Any] | None:
        """In a commit thread: the ledger row (and audit row) into the request's transaction,
        then COMMIT -- or roll back a 5xx (the client may retry it: nothing of it stays). None,
        or the response to replay when another attempt of the request committed first."""
        store = tx.store
        audit = (_action(scope), scope["path"]) if not is_stream(scope["path"]) else None
        if status >= 500:
            tx.close(commit=False)
            if audit is not None:
                with outside_request():
                    store.record_audit(_actor(scope), *audit, status)
            return None
        if not store.record_request(tx, key, status, body, key_name=_actor(scope), audit=audit):
            tx.close(commit=False)
            return store.recall_request(key) or (409, _reused_id())
        fault("server.before_commit")  # the request's writes and its row are in, not committed
        tx.close(commit=True)
        fault("server.after_commit")  # committed, the response not yet sent
        return None

    async def _unrecorded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A mutating request without a request id: applied as it comes (each store call
        commits on its own), audited unless it is of the stream tier."""
        seen: list[int] = []

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.append(message["status"])
            await send(message)

        await self.app(scope, receive, observe)
        if not is_stream(scope["path"]):
            status = seen[0] if seen else 500
            await run_in_threadpool(self.ctx.store.record_audit, _actor(scope), _action(scope), scope["path"], status)

    async def _in_commit_thread(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` in a thread of the commit limiter, not the routes' pool: on SQLite a
        request holds the write lock from its first write to its commit, and route threads
        blocked on that lock could hold every slot of the routes' pool."""
        if self._commits is None:
            self._commits = anyio.CapacityLimiter(COMMIT_THREADS)
        return await anyio.to_thread.run_sync(partial(fn, *args), limiter=self._commits)

    async def _recall(self, key: str, *, retry: bool) -> tuple[int, Any] | None:
        """The recorded response: from memory, or -- for a request marked as a retry -- from the
        store. A first attempt skips the store read; should its id be recorded after all, its
        ledger row conflicts at commit and it is rolled back and replayed (:meth:`_commit`)."""
        hit = self._memory.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2]
        if not retry:
            return None
        return await run_in_threadpool(self.ctx.store.recall_request, key)


def _action(scope: Scope) -> str:
    return f"{scope['method']} {_route_template(scope)}"


def _reused_id() -> Any:
    return error_payload(ConfigurationError(
        "this request id was already used for a request whose recorded response cannot be replayed; "
        "send the request again with a new X-Request-Id"))


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
