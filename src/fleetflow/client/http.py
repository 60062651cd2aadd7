"""The HTTP client: :class:`~fleetflow.client.protocol.OrchestratorAPI` over a fleetflow server.

* One keep-alive connection pool (httpx), with timeouts (``FLEETFLOW_API_TIMEOUT``).
* Connect errors and 502/503/504 are retried with exponential backoff and jitter (tenacity)
  for ``FLEETFLOW_API_RETRY_SECONDS``; a running flow's state and log writes keep retrying
  for ``FLEETFLOW_API_OUTAGE_SECONDS`` (saying so on the console) so a server restart does
  not crash it. Logs are buffered by the log shipper meanwhile.
* Every mutating request carries ``X-Request-Id`` (the same id across its retries), so the
  server applies a retried state change or run creation once; retries (and re-sent batches)
  also carry ``X-Request-Retry: 1``, so first attempts cost the server no ledger look-up.
* Errors come back as ``{"code", "message", "attrs"}`` and are re-raised as the same
  :mod:`fleetflow.exceptions` class the embedded store raises.
* A running flow's task-run writes and log lines are deferred and sent in batches
  (``FLEETFLOW_API_DEFER_RUN_WRITES``, :mod:`.batching`); every other call first waits until
  the deferred writes before it are stored, so a final flow-run state follows its task runs.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import inspect
import socket
import sys
import threading
import typing
import uuid
from typing import Any, Iterable, Sequence
from urllib.parse import quote

import httpx
import tenacity
from pydantic import TypeAdapter

from ..exceptions import FleetflowError, ServerUnavailable, error_from_payload
from ..orchestrator.extras import Artifact, ConcurrencyLimit, SlotOutcome, Variable
from ..orchestrator.keys import ApiKey, Scope
from ..orchestrator.operations import OPERATIONS
from ..orchestrator import transitions as tr
from ..orchestrator.service import json_dumps
from ..orchestrator.schemas import BlockDocument, Deployment, FlowRun, LogRecord, TaskRun, Worker, WorkPool
from ..settings import get_settings
from ..states import TERMINAL, State, StateType, check_transition, utcnow
from .batching import WriteBehind

RETRY_STATUSES = frozenset({502, 503, 504})
PAGE = 500  # the server's largest page of flow runs
LOG_PAGE = 5000  # ... and of log lines
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_TRACKED = 100_000  # task runs whose state changes may be deferred (the oldest are forgotten)


class _Retryable(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _q(value: str) -> str:
    return quote(value, safe="")


class HTTPClient:
    """Talks to ``base_url`` (e.g. ``http://127.0.0.1:4200``) with ``api_key`` (a key or a
    per-run token). Thread-safe; share one per process (:func:`fleetflow.client.get_client`)."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float | None = None,
                 retry_seconds: float | None = None, outage_seconds: float | None = None,
                 defer_run_writes: bool | None = None):  # fmt: skip
        settings = get_settings()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout if timeout is not None else settings.api_timeout
        self.retry_seconds = retry_seconds if retry_seconds is not None else settings.api_retry_seconds
        self.outage_seconds = outage_seconds if outage_seconds is not None else settings.api_outage_seconds
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # TCP_NODELAY: a request goes out as headers + body; with Nagle on, the body waits for
        # the server's delayed ACK of the headers (~40 ms per request on Linux).
        transport = httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )  # fmt: skip
        self._http = httpx.Client(base_url=self.base_url, headers=headers, transport=transport,
                                  timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)))  # fmt: skip
        self._warned = threading.Event()
        defer = settings.api_defer_run_writes if defer_run_writes is None else defer_run_writes
        self._deferred = WriteBehind(self._send_batch) if defer else None
        self._unanswered_batches: set[str] = set()  # ids of batches sent without an answer (re-sent as retries)
        self._task_runs: dict[str, TaskRun] = {}  # this client's task runs, not final: id -> as it is now
        self.requests_sent: collections.Counter[str] = collections.Counter()  # "METHOD path" -> attempts

    def __repr__(self) -> str:
        return f"HTTPClient({self.base_url!r})"  # never the key

    # ---- transport ------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, json: Any = None, params: Any = None, patient: bool = False,
              timeout: float | None = None, request_id: str | None = None, flush: bool = True,
              resent: bool = False) -> Any:  # fmt: skip
        """One API call: a single attempt on the fast path, retries only once one fails. The
        deferred writes made before it are stored first (``flush``). Retries, and a request
        ``resent`` under an id sent before, carry ``X-Request-Retry: 1``: only those make the
        server look its ledger up before applying (see :mod:`fleetflow.server.api.ledger`)."""
        if flush and self._deferred is not None and self._deferred.has_pending():
            self._deferred.flush()
        request_id = request_id or uuid.uuid4().hex
        headers = {"X-Request-Id": request_id, "Content-Type": "application/json"} if method in _MUTATING else None
        retry_headers = {**headers, "X-Request-Retry": "1"} if headers else None
        try:
            return self._once(method, path, json, params, retry_headers if resent else headers, timeout)
        except _Retryable as first:
            again = lambda: self._once(method, path, json, params, retry_headers, timeout)  # noqa: E731
            return self._retry(again, first, patient, path)

    def _once(self, method: str, path: str, json: Any, params: Any, headers: Any, timeout: float | None) -> Any:
        self.requests_sent[f"{method} {path}"] += 1
        try:
            content = None if json is None else json_dumps(json)  # datetimes, sets, models: the store's rules
            response = self._http.request(method, path, content=content, params=params, headers=headers,
                                          timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)  # fmt: skip
        except httpx.TransportError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in RETRY_STATUSES:
            raise _Retryable(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise _error(response)
        return response.json() if response.content else None

    def _retry(self, attempt: Any, first: _Retryable, patient: bool, path: str) -> Any:
        budget = self.outage_seconds if patient else self.retry_seconds
        if patient and not self._warned.is_set():
            self._warned.set()
            print(f"fleetflow: the server at {self.base_url} is unreachable ({first.reason}); retrying this run's "
                  f"state and log writes for up to {budget:.0f} s (FLEETFLOW_API_OUTAGE_SECONDS)", file=sys.stderr)  # fmt: skip
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable), stop=tenacity.stop_after_delay(budget),
            wait=tenacity.wait_random_exponential(multiplier=0.1, max=5.0), reraise=True,
        )  # fmt: skip
        try:
            result = retrying(attempt)
        except _Retryable as last:
            raise ServerUnavailable(
                f"the fleetflow server at {self.base_url} did not answer {path} for {budget:.0f} s ({last.reason}); "
                "check that `fleetflow server start` is running and FLEETFLOW_API_URL is right."
            ) from None
        self._warned.clear()
        return result

    def close(self) -> None:
        """Store the deferred writes (saying so on stderr when the server cannot take them),
        then close the connections."""
        try:
            self.flush()
        except FleetflowError as exc:
            print(f"fleetflow: closing the client with deferred writes unsent: {exc}", file=sys.stderr)
        finally:
            self._http.close()

    # ---- deferred writes (see fleetflow.client.batching) ------------------------------------
    def flush(self) -> None:
        """Wait until every deferred write made so far is stored (a no-op when none are)."""
        if self._deferred is not None:
            self._deferred.flush()

    def deferred_rejections(self) -> list[FleetflowError]:
        """Deferred writes the server refused, most recent last (each was also printed on stderr)."""
        return self._deferred.rejections() if self._deferred is not None else []

    def _send_batch(self, items: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
        """Post one batch; a batch re-sent under its id (undelivered before) says it is a retry."""
        resent = request_id in self._unanswered_batches
        try:
            results = self._call("POST", "/api/v1/batch", json={"items": items}, patient=True, request_id=request_id,
                                 flush=False, resent=resent)["results"]  # fmt: skip
        except BaseException:
            self._unanswered_batches.add(request_id)
            raise
        self._unanswered_batches.discard(request_id)
        return results

    def _track(self, task_run: TaskRun) -> None:
        if task_run.state is not None and task_run.state.type in TERMINAL:
            self._task_runs.pop(task_run.id, None)
            return
        if len(self._task_runs) >= MAX_TRACKED:  # forget the oldest: its later changes are sent unbatched
            with contextlib.suppress(StopIteration, RuntimeError):
                self._task_runs.pop(next(iter(self._task_runs)), None)
        self._task_runs[task_run.id] = task_run

    # ---- flow runs ------------------------------------------------------------------------
    def create_flow_run(
        self,
        flow_name: str,
        *,
        state: State | None = None,
        parameters: dict[str, Any] | None = None,
        name: str | None = None,
        parent_task_run_id: str | None = None,
        deployment_id: str | None = None,
        work_pool_name: str | None = None,
        idempotency_key: str | None = None,
        infra_overrides: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        expected_start_time: dt.datetime | None = None,
        id: str | None = None,  # noqa: A002 - the interface's name
    ) -> FlowRun:
        body = {
            "flow_name": flow_name, "state": state.model_dump(mode="json") if state else None,
            "parameters": parameters or {}, "name": name, "parent_task_run_id": parent_task_run_id,
            "deployment_id": deployment_id, "work_pool_name": work_pool_name, "idempotency_key": idempotency_key,
            "infra_overrides": infra_overrides or {}, "tags": list(tags), "expected_start_time": _iso(expected_start_time),
            "id": id,
        }  # fmt: skip
        return FlowRun.model_validate(self._call("POST", "/api/v1/flow_runs", json=body, patient=True))

    def create_flow_run_from_deployment(
        self,
        deployment: str,
        *,
        parameters: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        parent_flow_run_id: str | None = None,
        parent_dynamic_key: str | None = None,
        flow_run_name: str | None = None,
        scheduled_time: dt.datetime | None = None,
        infra_overrides: dict[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> FlowRun:
        body = {
            "parameters": parameters or {}, "idempotency_key": idempotency_key, "parent_flow_run_id": parent_flow_run_id,
            "parent_dynamic_key": parent_dynamic_key, "flow_run_name": flow_run_name,
            "scheduled_time": _iso(scheduled_time), "infra_overrides": infra_overrides or {},
            "tags": list(tags) if tags is not None else None,
        }  # fmt: skip
        path = f"/api/v1/deployments/{quote(deployment, safe='/')}/runs"
        return FlowRun.model_validate(self._call("POST", path, json=body))

    def read_flow_run(self, flow_run_id: str) -> FlowRun:
        return FlowRun.model_validate(self._call("GET", f"/api/v1/flow_runs/{_q(flow_run_id)}"))

    def read_flow_runs(
        self,
        *,
        state_types: Iterable[StateType] | None = None,
        flow_name: str | None = None,
        deployment_id: str | None = None,
        work_pool_name: str | None = None,
        parent_flow_run_id: str | None = None,
        worker_name: str | None = None,
        limit: int = 200,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
        cursor: str | None = None,
    ) -> list[FlowRun]:
        params: dict[str, Any] = {
            "flow_name": flow_name, "deployment_id": deployment_id, "work_pool_name": work_pool_name,
            "parent_flow_run_id": parent_flow_run_id, "worker_name": worker_name,
            "created_after": _iso(created_after), "created_before": _iso(created_before),
        }  # fmt: skip
        params = {k: v for k, v in params.items() if v is not None}
        if state_types is not None:
            params["state_type"] = [StateType(s).value for s in state_types]
            if not params["state_type"]:
                return []
        runs: list[FlowRun] = []
        while len(runs) < limit:  # the server pages at PAGE; longer lists are followed by cursor
            page = self._call("GET", "/api/v1/flow_runs", params={**params, "limit": min(PAGE, limit - len(runs)),
                                                                   **({"cursor": cursor} if cursor else {})})  # fmt: skip
            runs += [FlowRun.model_validate(r) for r in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        return runs

    def count_flow_runs(
        self,
        *,
        state_types: Iterable[StateType] | None = None,
        flow_name: str | None = None,
        work_pool_name: str | None = None,
        created_after: dt.datetime | None = None,
        limit: int = 10_000,
    ) -> int:
        params: dict[str, Any] = {"flow_name": flow_name, "work_pool_name": work_pool_name,
                                  "created_after": _iso(created_after), "limit": limit}  # fmt: skip
        params = {k: v for k, v in params.items() if v is not None}
        if state_types is not None:
            params["state_type"] = [StateType(s).value for s in state_types]
        return self._call("GET", "/api/v1/flow_runs/count", params=params)["count"]

    def wait_for_flow_run(self, flow_run_id: str, *, timeout: float = 30.0) -> FlowRun:
        import time

        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            chunk = max(0.0, min(30.0, deadline - time.monotonic()))
            data = self._call("GET", f"/api/v1/flow_runs/{_q(flow_run_id)}/wait", params={"timeout": chunk},
                              timeout=chunk + self.timeout)  # fmt: skip
            run = FlowRun.model_validate(data)
            if (run.state and run.state.is_final) or time.monotonic() >= deadline:
                return run

    def set_flow_run_state(self, flow_run_id: str, state: State, *, force: bool = False) -> FlowRun:
        body = {"state": state.model_dump(mode="json"), "force": force}
        return FlowRun.model_validate(
            self._call("POST", f"/api/v1/flow_runs/{_q(flow_run_id)}/state", json=body, patient=True)
        )

    def read_flow_run_states(self, flow_run_id: str) -> list[State]:
        return [State.model_validate(s) for s in self._call("GET", f"/api/v1/flow_runs/{_q(flow_run_id)}/states")]

    def update_flow_run(self, flow_run_id: str, **fields: Any) -> FlowRun:
        data = self._call("PATCH", f"/api/v1/flow_runs/{_q(flow_run_id)}", json={"fields": fields}, patient=True)
        return FlowRun.model_validate(data)

    def delete_flow_run(self, flow_run_id: str) -> None:
        self._call("DELETE", f"/api/v1/flow_runs/{_q(flow_run_id)}")

    def claim_flow_runs(self, work_pool_name: str, worker_name: str, *, limit: int = 10,
                        queues: Sequence[str] | None = None, lease_owner: str | None = None,
                        lease_seconds: float = 30.0, wait: float = 0.0) -> list[FlowRun]:  # fmt: skip
        body = {"worker_name": worker_name, "limit": limit, "wait": wait, "lease_seconds": lease_seconds,
                "queues": list(queues) if queues is not None else None, "lease_owner": lease_owner}  # fmt: skip
        data = self._call("POST", f"/api/v1/work_pools/{_q(work_pool_name)}/claim", json=body, timeout=wait + self.timeout)
        return [FlowRun.model_validate(r) for r in data]

    def mint_run_token(self, flow_run_id: str) -> str | None:
        return self._call("POST", f"/api/v1/flow_runs/{_q(flow_run_id)}/token")["token"]

    # ---- task runs ------------------------------------------------------------------------
    def create_task_run(
        self,
        flow_run_id: str,
        task_key: str,
        name: str,
        *,
        dynamic_key: str = "0",
        cache_key: str | None = None,
        states: Sequence[State] = (),
        id: str | None = None,  # noqa: A002 - the interface's name
    ) -> TaskRun:
        if self._deferred is not None:
            return self._create_task_run_deferred(flow_run_id, task_key, name, dynamic_key, cache_key, states, id)
        body = {"flow_run_id": flow_run_id, "task_key": task_key, "name": name, "dynamic_key": dynamic_key,
                "cache_key": cache_key, "states": [s.model_dump(mode="json") for s in states], "id": id}  # fmt: skip
        return TaskRun.model_validate(self._call("POST", "/api/v1/task_runs", json=body, patient=True))

    def _create_task_run_deferred(self, flow_run_id: str, task_key: str, name: str, dynamic_key: str,
                                  cache_key: str | None, states: Sequence[State], id: str | None) -> TaskRun:  # noqa: A002
        """The task run as the store will record it (the history checked by the same rules),
        its creation queued for the next batch."""
        states = list(states) or [State(type=StateType.PENDING)]
        columns = tr.initial_columns(states)  # raises InvalidStateTransition for a bad history
        task_run = TaskRun(id=id or str(uuid.uuid4()), flow_run_id=flow_run_id, task_key=task_key, name=name,
                           dynamic_key=dynamic_key, cache_key=cache_key, state=states[-1], created=utcnow(),
                           start_time=columns["start_time"], end_time=columns["end_time"], run_count=columns["run_count"])  # fmt: skip
        body = {"flow_run_id": flow_run_id, "task_key": task_key, "name": name, "dynamic_key": dynamic_key,
                "cache_key": cache_key, "states": [s.model_dump(mode="json") for s in states], "id": task_run.id}  # fmt: skip
        self._deferred.add({"op": "create_task_run", "body": body})  # type: ignore[union-attr]
        self._track(task_run)
        return task_run

    def read_task_run(self, task_run_id: str) -> TaskRun:
        return TaskRun.model_validate(self._call("GET", f"/api/v1/task_runs/{_q(task_run_id)}"))

    def read_task_runs(self, flow_run_id: str) -> list[TaskRun]:
        return [TaskRun.model_validate(t) for t in self._call("GET", f"/api/v1/flow_runs/{_q(flow_run_id)}/task_runs")]

    def set_task_run_state(self, task_run_id: str, state: State, *, force: bool = False) -> TaskRun:
        body = {"state": state.model_dump(mode="json"), "force": force}
        known = self._task_runs.get(task_run_id) if self._deferred is not None else None
        if known is not None:  # one of this client's own: checked here, sent with the next batch
            if not force:
                check_transition(known.state.type if known.state else None, state.type)
            self._deferred.add({"op": "set_task_run_state", "task_run_id": task_run_id, "body": body})  # type: ignore[union-attr]
            updated = _advanced(known, state)
            self._track(updated)
            return updated
        return TaskRun.model_validate(
            self._call("POST", f"/api/v1/task_runs/{_q(task_run_id)}/state", json=body, patient=True)
        )

    def read_task_run_states(self, task_run_id: str) -> list[State]:
        return [State.model_validate(s) for s in self._call("GET", f"/api/v1/task_runs/{_q(task_run_id)}/states")]

    # ---- logs and cache -------------------------------------------------------------------
    def write_logs(self, records: Sequence[LogRecord]) -> None:
        if not records:
            return
        body = {"records": [r.model_dump(mode="json") for r in records]}
        if self._deferred is not None:  # with the deferred task-run writes before them, in one batch
            self._deferred.add({"op": "write_logs", "body": body})
            self._deferred.flush()
        else:
            self._call("POST", "/api/v1/logs", json=body, patient=True)

    def read_logs(
        self, *, flow_run_id: str | None = None, task_run_id: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[LogRecord]:
        records: list[LogRecord] = []
        while len(records) < limit:  # the server pages at LOG_PAGE lines; longer reads follow after_id
            want = min(LOG_PAGE, limit - len(records))
            params = {"flow_run_id": flow_run_id, "task_run_id": task_run_id, "after_id": after_id, "limit": want}
            page = [LogRecord.model_validate(r) for r in self._call(
                "GET", "/api/v1/logs", params={k: v for k, v in params.items() if v is not None})]  # fmt: skip
            records += page
            if len(page) < want:
                break
            after_id = page[-1].id or after_id
        return records

    def read_cache(self, cache_key: str) -> dict[str, Any] | None:
        return self._call("GET", f"/api/v1/cache/{_q(cache_key)}")["result"]

    def write_cache(self, cache_key: str, result: dict[str, Any], expiration: dt.datetime | None) -> None:
        body = {"result": result, "expiration": _iso(expiration)}
        self._call("PUT", f"/api/v1/cache/{_q(cache_key)}", json=body, patient=True)

    # ---- blocks ---------------------------------------------------------------------------
    def save_block_document(
        self, block_type: str, name: str, data: dict[str, Any], *, schema_version: int = 1, overwrite: bool = False
    ) -> BlockDocument:
        body = {"data": data, "schema_version": schema_version, "overwrite": overwrite}
        return BlockDocument.model_validate(self._call("PUT", f"/api/v1/blocks/{_q(block_type)}/{_q(name)}", json=body))

    def read_block_document(self, block_type: str, name: str) -> BlockDocument:
        return BlockDocument.model_validate(self._call("GET", f"/api/v1/blocks/{_q(block_type)}/{_q(name)}"))

    def read_block_documents(self, block_type: str | None = None) -> list[BlockDocument]:
        params = {"block_type": block_type} if block_type else None
        return [BlockDocument.model_validate(d) for d in self._call("GET", "/api/v1/blocks", params=params)]

    def delete_block_document(self, block_type: str, name: str) -> None:
        self._call("DELETE", f"/api/v1/blocks/{_q(block_type)}/{_q(name)}")

    # ---- deployments ----------------------------------------------------------------------
    def upsert_deployment(self, deployment: Deployment) -> Deployment:
        return Deployment.model_validate(self._call("PUT", "/api/v1/deployments", json=deployment.model_dump(mode="json")))

    def read_deployment(self, deployment_id: str) -> Deployment:
        return Deployment.model_validate(self._call("GET", f"/api/v1/deployments/{_q(deployment_id)}"))

    def read_deployment_by_name(self, full_name: str) -> Deployment:
        return Deployment.model_validate(self._call("GET", "/api/v1/deployments/by-name", params={"full_name": full_name}))

    def read_deployments(self, *, flow_name: str | None = None, work_pool_name: str | None = None) -> list[Deployment]:
        params = {k: v for k, v in {"flow_name": flow_name, "work_pool_name": work_pool_name}.items() if v is not None}
        return [Deployment.model_validate(d) for d in self._call("GET", "/api/v1/deployments", params=params)]

    def delete_deployment(self, deployment_id: str) -> None:
        self._call("DELETE", f"/api/v1/deployments/{_q(deployment_id)}")

    # ---- work pools and workers -----------------------------------------------------------
    def create_work_pool(self, pool: WorkPool, *, overwrite: bool = False) -> WorkPool:
        body = {"pool": pool.model_dump(mode="json"), "overwrite": overwrite}
        return WorkPool.model_validate(self._call("POST", "/api/v1/work_pools", json=body))

    def read_work_pool(self, name: str) -> WorkPool:
        return WorkPool.model_validate(self._call("GET", f"/api/v1/work_pools/{_q(name)}"))

    def read_work_pools(self) -> list[WorkPool]:
        return [WorkPool.model_validate(p) for p in self._call("GET", "/api/v1/work_pools")]

    def set_work_pool_paused(self, name: str, paused: bool) -> WorkPool:
        body = {"is_paused": bool(paused)}
        return WorkPool.model_validate(self._call("PATCH", f"/api/v1/work_pools/{_q(name)}", json=body))

    def delete_work_pool(self, name: str) -> None:
        self._call("DELETE", f"/api/v1/work_pools/{_q(name)}")

    def worker_heartbeat(self, work_pool_name: str, worker_name: str, *, hostname: str | None = None, pid: int | None = None) -> None:
        body = {"worker_name": worker_name, "hostname": hostname, "pid": pid}
        self._call("POST", f"/api/v1/work_pools/{_q(work_pool_name)}/workers/heartbeat", json=body)

    def read_workers(self, work_pool_name: str) -> list[Worker]:
        return [Worker.model_validate(w) for w in self._call("GET", f"/api/v1/work_pools/{_q(work_pool_name)}/workers")]

    # ---- artifacts, variables, concurrency limits -----------------------------------------
    def create_artifact(self, type: str, data: Any, *, key: str | None = None, description: str | None = None,
                        flow_run_id: str | None = None, task_run_id: str | None = None) -> Artifact:  # noqa: A002
        body = {"type": type, "data": data, "key": key, "description": description, "flow_run_id": flow_run_id,
                "task_run_id": task_run_id}  # fmt: skip
        return Artifact.model_validate(self._call("POST", "/api/v1/artifacts", json=body, patient=True))

    def read_artifacts(self, *, key: str | None = None, flow_run_id: str | None = None, limit: int = 200) -> list[Artifact]:
        params = {k: v for k, v in {"key": key, "flow_run_id": flow_run_id, "limit": limit}.items() if v is not None}
        return [Artifact.model_validate(a) for a in self._call("GET", "/api/v1/artifacts", params=params)]

    def set_variable(self, name: str, value: str, *, tags: Sequence[str] = (), overwrite: bool = False) -> Variable:
        body = {"value": value, "tags": list(tags), "overwrite": overwrite}
        return Variable.model_validate(self._call("PUT", f"/api/v1/variables/{_q(name)}", json=body))

    def read_variable(self, name: str) -> Variable | None:
        found = self._call("GET", f"/api/v1/variables/{_q(name)}")["variable"]
        return Variable.model_validate(found) if found is not None else None

    def read_variables(self) -> list[Variable]:
        return [Variable.model_validate(v) for v in self._call("GET", "/api/v1/variables")]

    def delete_variable(self, name: str) -> None:
        self._call("DELETE", f"/api/v1/variables/{_q(name)}")

    def create_concurrency_limit(self, tag: str, limit: int) -> ConcurrencyLimit:
        data = self._call("PUT", f"/api/v1/concurrency_limits/{_q(tag)}", json={"limit": limit})
        return ConcurrencyLimit.model_validate(data)

    def read_concurrency_limits(self) -> list[ConcurrencyLimit]:
        return [ConcurrencyLimit.model_validate(c) for c in self._call("GET", "/api/v1/concurrency_limits")]

    def delete_concurrency_limit(self, tag: str) -> None:
        self._call("DELETE", f"/api/v1/concurrency_limits/{_q(tag)}")

    def acquire_concurrency_slot(self, tag: str, task_run_id: str) -> SlotOutcome:
        body = {"task_run_id": task_run_id}
        return self._call("POST", f"/api/v1/concurrency_limits/{_q(tag)}/acquire", json=body, patient=True)["outcome"]

    def release_concurrency_slot(self, tag: str, task_run_id: str) -> None:
        body = {"task_run_id": task_run_id}
        self._call("POST", f"/api/v1/concurrency_limits/{_q(tag)}/release", json=body, patient=True)

    # ---- API keys -------------------------------------------------------------------------
    def create_api_key(self, name: str, scope: Scope, *, expires: dt.datetime | None = None) -> tuple[ApiKey, str]:
        body = {"name": name, "scope": Scope(scope).value, "expires": _iso(expires)}
        data = self._call("POST", "/api/v1/api_keys", json=body)
        return ApiKey.model_validate(data["key"]), data["secret"]

    def read_api_keys(self) -> list[ApiKey]:
        return [ApiKey.model_validate(k) for k in self._call("GET", "/api/v1/api_keys")]

    def revoke_api_key(self, name: str) -> ApiKey:
        return ApiKey.model_validate(self._call("DELETE", f"/api/v1/api_keys/{_q(name)}"))

    # ---- flow run usage records (fleetflow.server.api.usage) --------------------------------
    def write_flow_run_usage(self, flow_run_id: str, usage: dict[str, Any]) -> None:
        self._call("PUT", f"/api/v1/usage/flow_runs/{_q(flow_run_id)}", json=usage, patient=True)

    def read_flow_run_usage(self, flow_run_id: str) -> dict[str, Any] | None:
        return self._call("GET", f"/api/v1/usage/flow_runs/{_q(flow_run_id)}")["usage"]

    def read_flow_run_usages(self, flow_run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        body = {"flow_run_ids": list(dict.fromkeys(flow_run_ids))}
        return self._call("POST", "/api/v1/usage/flow_runs", json=body)["usages"]


def _remote(name: str) -> Any:
    """An HTTPClient method for the store operation ``name`` (``POST /api/v1/ops/{name}``),
    with the store method's signature, its result parsed by the store method's return type."""
    from ..orchestrator.service import Orchestrator

    store_method = getattr(Orchestrator, name)
    signature = inspect.signature(store_method)
    returns = TypeAdapter(typing.get_type_hints(store_method).get("return", Any))

    def method(self: "HTTPClient", *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        payload = {k: v for k, v in bound.arguments.items() if k != "self"}
        patient = OPERATIONS[name] == "run"  # a running flow's own lease calls ride out an outage
        return returns.validate_python(self._call("POST", f"/api/v1/ops/{name}", json=payload, patient=patient)["result"])

    method.__name__ = method.__qualname__ = name
    method.__signature__ = signature  # type: ignore[attr-defined]
    method.__doc__ = store_method.__doc__
    return method


for _name in OPERATIONS:
    setattr(HTTPClient, _name, _remote(_name))


def _advanced(task_run: TaskRun, state: State) -> TaskRun:
    """``task_run`` after ``state``, with the columns the store's transition sets
    (:mod:`fleetflow.orchestrator.transitions`): run count and start time on RUNNING, end
    time on a final state."""
    update: dict[str, Any] = {"state": state}
    if state.type is StateType.RUNNING:
        update["run_count"] = task_run.run_count + 1
        update["start_time"] = task_run.start_time or state.timestamp
    if state.type in TERMINAL:
        update["end_time"] = state.timestamp
    return task_run.model_copy(update=update)


def _error(response: httpx.Response) -> FleetflowError:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and "code" in payload:
        return error_from_payload(payload)
    return FleetflowError(f"the fleetflow server answered HTTP {response.status_code} for {response.request.url.path}: "
                          f"{response.text[:300]}")  # fmt: skip
