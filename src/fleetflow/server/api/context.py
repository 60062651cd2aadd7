"""What every route shares: the store, the authenticator, the notifier, and the access
rules that need the store (which runs a run token may touch)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from fastapi import Request

from ...exceptions import AuthenticationError, ObjectNotFound, PermissionDenied
from ...orchestrator.keys import Scope
from ...orchestrator.request_tx import outside_request
from ...orchestrator.service import Orchestrator
from .auth import ANONYMOUS_ADMIN, ENDED, Authenticator, Principal, require
from .waiting import Notifier

_MAX_REMEMBERED = 100_000
_MAX_DEPTH = 32  # in-process sub-flow nesting a run token may reach


class _Bounded(OrderedDict):
    """A small LRU mapping (task run -> flow run, token -> runs it created)."""

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > _MAX_REMEMBERED:
            self.popitem(last=False)


class ServerContext:
    """State of one running app. ``use_store`` swaps the store (tests reuse one server with a
    fresh database each); ``auth`` False serves everyone as admin (loopback only)."""

    def __init__(self, store: Orchestrator, *, auth: bool = True):
        self.store = store
        self.auth = auth
        self.authenticator = Authenticator()
        self.notifier = Notifier()
        self._lock = threading.Lock()
        self._task_flow: _Bounded = _Bounded()
        self._token_runs: _Bounded = _Bounded()
        self.in_flight = 0  # requests being served (kept by the app's counting middleware)

    def use_store(self, store: Orchestrator) -> None:
        with self._lock:
            self.store = store
            self._task_flow.clear()
            self._token_runs.clear()
        self.authenticator.forget()
        self.authenticator.limiter.reset()

    # ---- who is calling -------------------------------------------------------------------
    def principal(self, request: Request) -> Principal:
        if not self.auth:
            return ANONYMOUS_ADMIN
        address = request.client.host if request.client else "unknown"
        with outside_request():  # a key's last_used is not part of the request's transaction
            principal = self.authenticator.authenticate(self.store, request.headers.get("authorization"), address)
        if principal.ended and not (request.method == "POST" and request.url.path == "/api/v1/logs"):
            raise AuthenticationError(ENDED)
        request.state.principal = principal
        return principal

    # ---- which runs a run token may write ---------------------------------------------------
    def check_run(self, principal: Principal, flow_run_id: str, action: str, scope: Scope = Scope.WORKER,
                  *, after_end: bool = False) -> None:  # fmt: skip
        """A key needs ``scope``; a run token may act on its run and the in-process sub-flows
        under it (runs without a deployment whose parent it may act on) -- once the run has
        ended, only where ``after_end`` (shipping its last logs)."""
        if principal.ended and not after_end:
            raise AuthenticationError(ENDED)
        if not principal.is_run_token:
            require(principal, scope, action)
        elif not self._token_reaches(principal.flow_run_id or "", flow_run_id):
            raise PermissionDenied(f"{action}: this run token belongs to flow run {principal.flow_run_id}, not {flow_run_id}.")

    def _token_reaches(self, own: str, run_id: str) -> bool:
        if run_id == own or self._token_runs.get((own, run_id)):
            return True
        chain, current = [], run_id
        for _ in range(_MAX_DEPTH):
            run = self.store.read_flow_run(current)
            if run.deployment_id is not None or run.parent_flow_run_id is None:
                return False
            chain.append(current)
            current = run.parent_flow_run_id
            if current == own or self._token_runs.get((own, current)):
                with self._lock:
                    for link in chain:
                        self._token_runs.put((own, link), True)
                return True
        return False

    def check_run_read(self, principal: Principal, run: Any) -> None:
        """Keys read every run; a run token reads the runs it may write and their children."""
        if not principal.is_run_token:
            return
        if principal.ended:
            raise AuthenticationError(ENDED)
        own = principal.flow_run_id or ""
        if self._token_reaches(own, run.id) or (run.parent_flow_run_id and self._token_reaches(own, run.parent_flow_run_id)):
            return
        raise PermissionDenied(f"this run token belongs to flow run {own}; it cannot read flow run {run.id}.")

    def check_task_run(self, principal: Principal, task_run_id: str, action: str) -> None:
        if principal.ended:
            raise AuthenticationError(ENDED)
        if not principal.is_run_token:
            require(principal, Scope.WORKER, action)
            return
        flow_run_id = self._task_flow.get(task_run_id)
        if flow_run_id is None:
            flow_run_id = self.store.read_task_run(task_run_id).flow_run_id
        self.check_run(principal, flow_run_id, action)

    def remember_task_run(self, task_run_id: str, flow_run_id: str) -> None:
        with self._lock:
            self._task_flow.put(task_run_id, flow_run_id)

    def blocks_for_token(self, principal: Principal) -> set[str]:
        """'type/name' of the blocks a run token may read: its deployment's and pool's
        infrastructure and storage, the server's result storage, and the saved blocks passed
        to the run as parameters (they travel by reference, see blocks/references.py)."""
        from ...blocks.references import referenced_blocks
        from ...settings import get_settings

        run = self.store.read_flow_run(principal.flow_run_id or "")
        refs: set[str] = referenced_blocks(run.parameters or {})
        if get_settings().result_storage:
            refs.add(get_settings().result_storage or "")
        if run.deployment_id:
            deployment = self.store.read_deployment(run.deployment_id)
            refs |= {r for r in (deployment.storage_block, deployment.infrastructure_block) if r}
            pool_name = run.work_pool_name or deployment.work_pool_name
            if pool_name:
                pool = self.store.read_work_pool(pool_name)
                if pool.infrastructure_block:
                    refs.add(pool.infrastructure_block)
        refs |= self._result_storage_of(refs)
        return refs

    def _result_storage_of(self, infrastructure: set[str]) -> set[str]:
        """The result storage an infrastructure block points its runs at (its ``env`` sets
        ``FLEETFLOW_RESULT_STORAGE``, as register-blocks does for ECS): the run writes there."""
        found: set[str] = set()
        for ref in infrastructure:
            block_type, _, name = ref.partition("/")
            try:
                env = (self.store.read_block_document(block_type, name).data or {}).get("env") or {}
            except ObjectNotFound:
                continue
            value = env.get("FLEETFLOW_RESULT_STORAGE") if isinstance(env, dict) else None
            if isinstance(value, str) and "/" in value:
                found.add(value)
        return found


def context(request: Request) -> ServerContext:
    return request.app.state.fleetflow
