"""The one interface every part of fleetflow uses to reach the state store.

Two implementations: :class:`~fleetflow.client.embedded.EmbeddedClient` (the store in this
process, on SQLite or PostgreSQL) and :class:`~fleetflow.client.http.HTTPClient` (a fleetflow
server over HTTP). The engine, the worker, the runner and the CLI hold an ``OrchestratorAPI``
and never care which one it is. Errors are the same classes on both (see
:mod:`fleetflow.exceptions`, ``code``).

Block documents cross this interface *open*: secret values travel as
``{"$fleetflow-secret-value": ...}`` markers and are sealed (encrypted) by whoever holds the
encryption key -- the embedded client on its own machine, or the server.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Iterable, Protocol, Sequence

from ..orchestrator.api_protocols import ExtrasAPI, UsageAPI

if TYPE_CHECKING:  # annotations only: their modules hold the SQL too (SQLAlchemy), off the flow path
    from ..orchestrator.keys import ApiKey, Scope
    from ..orchestrator.queues import WorkQueue
    from ..orchestrator.schemas import BlockDocument, Deployment, FlowRun, LogRecord, TaskRun, Worker, WorkPool
    from ..states import State, StateType


class OrchestratorAPI(ExtrasAPI, UsageAPI, Protocol):
    """Everything below, plus artifacts, variables and tag concurrency limits (:class:`ExtrasAPI`)
    and flow run usage records (:class:`UsageAPI`)."""

    # ---- flow runs --------------------------------------------------------------------------
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
        id: str | None = None,
    ) -> FlowRun:
        """Create a run (default state PENDING). With ``deployment_id`` + ``idempotency_key``
        an existing run with that key is returned instead of creating a second one."""

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
        """One store operation: a SCHEDULED run of ``deployment`` (an id or 'flow/name').

        Checks the parameters (merged onto the deployment's defaults) against its schema and
        the overrides against its infrastructure before anything is written. With
        ``parent_flow_run_id`` it also creates the parent's linking task run (PENDING ->
        RUNNING), and defaults the idempotency key from the parent and ``parent_dynamic_key``;
        a run already created with the same key is returned instead of a second one."""

    def read_flow_run(self, flow_run_id: str) -> FlowRun:
        """Raise ObjectNotFound when missing."""

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
        """Newest first. Keyset pages: pass the previous page's :func:`page_cursor` as
        ``cursor``; ``created_after``/``created_before`` bound the time window."""

    def count_flow_runs(
        self,
        *,
        state_types: Iterable[StateType] | None = None,
        flow_name: str | None = None,
        work_pool_name: str | None = None,
        created_after: dt.datetime | None = None,
        limit: int = 10_000,
    ) -> int:
        """How many runs match, counting at most ``limit`` (a bounded count never scans a
        million-row table: a result equal to ``limit`` means "at least")."""

    def wait_for_flow_run(self, flow_run_id: str, *, timeout: float = 30.0) -> FlowRun:
        """The run once it is final, or as it is after ``timeout`` seconds (long-poll)."""

    def set_flow_run_state(self, flow_run_id: str, state: State, *, force: bool = False) -> FlowRun:
        """Atomically validate and apply a transition; append it to the history.
        Raises InvalidStateTransition (carrying the current state) unless ``force``."""

    def read_flow_run_states(self, flow_run_id: str) -> list[State]:
        """The whole history, oldest first."""

    def update_flow_run(self, flow_run_id: str, **fields: Any) -> FlowRun:
        """Set non-state fields: infrastructure_pid, infrastructure, worker_name, name, tags."""

    def delete_flow_run(self, flow_run_id: str) -> None: ...

    def claim_flow_runs(self, work_pool_name: str, worker_name: str, *, limit: int = 10,
                        queues: Sequence[str] | None = None, lease_owner: str | None = None,
                        lease_seconds: float = 30.0, wait: float = 0.0) -> list[FlowRun]:
        """Move up to ``limit`` due SCHEDULED runs of the pool to PENDING for this worker, leased
        to ``lease_owner`` (only runs of ``queues`` when given; work-queue priority, pause and
        limits apply). Atomic: two workers never claim the same run. Records the poll. With
        ``wait`` > 0 it waits up to that many seconds for a claimable run (long-poll)."""

    def mint_run_token(self, flow_run_id: str) -> str | None:
        """A token scoped to this flow run, for its launch to report with (HTTP); None when
        the store is reached directly (embedded) and no token is needed."""

    # ---- launch attempts and leases (see fleetflow.orchestrator.leases) ---------------------
    def begin_launch_attempt(self, flow_run_id: str, lease_owner: str, *, lease_seconds: float) -> FlowRun | None:
        """New attempt number + token for a PENDING run this owner leases; None if not its own."""

    def claim_launch(self, flow_run_id: str, launch_token: str, lease_owner: str, *, lease_seconds: float,
                     handle: str | None = None) -> FlowRun:
        """PENDING -> RUNNING for the current attempt's token only; else raises StaleLaunch."""

    def renew_leases(self, lease_owner: str, *, lease_seconds: float, take: Sequence[str] = ()) -> list[str]:
        """Extend the leases ``lease_owner`` holds (and take back ``take``); the ids renewed."""

    def acquire_lease(self, flow_run_id: str, lease_owner: str, *, lease_seconds: float) -> None: ...

    def read_expired_leases(self, *, work_pool_name: str | None = None, pooled: bool | None = None,
                            unleased_grace_seconds: float = 60.0, limit: int = 500) -> list[FlowRun]:
        """Runs in progress whose lease lapsed (or that never had one), oldest first."""

    def take_over_lease(self, run: FlowRun, lease_owner: str, *, lease_seconds: float) -> FlowRun | None:
        """Compare-and-set of an expired lease; None when another reconciler won."""

    def reschedule_flow_run(self, flow_run_id: str, lease_owner: str, message: str) -> FlowRun | None:
        """PENDING -> SCHEDULED with the attempt token cleared; None if not this owner's."""

    def relaunch_flow_run(self, flow_run_id: str, message: str, *, not_before: dt.datetime,
                          from_final: bool = False) -> FlowRun | None:
        """SCHEDULED ('AwaitingRelaunch') for a new attempt; None when not in a relaunchable state."""

    def read_worker(self, work_pool_name: str, name: str) -> Worker | None: ...

    def claim_worker_name(self, work_pool_name: str, name: str, *, instance_id: str, hostname: str | None,
                          pid: int | None, replace: Worker | None) -> bool:
        """Insert a free name, or replace exactly the holder read before; False if another won."""

    def release_worker_name(self, work_pool_name: str, name: str, instance_id: str) -> None: ...

    # ---- task runs --------------------------------------------------------------------------
    def create_task_run(
        self,
        flow_run_id: str,
        task_key: str,
        name: str,
        *,
        dynamic_key: str = "0",
        cache_key: str | None = None,
        states: Sequence[State] = (),
        id: str | None = None,
    ) -> TaskRun:
        """Create a task run whose history starts with ``states`` (default [PENDING]), in one transaction."""

    def read_task_run(self, task_run_id: str) -> TaskRun: ...

    def read_task_runs(self, flow_run_id: str) -> list[TaskRun]:
        """Oldest first."""

    def set_task_run_state(self, task_run_id: str, state: State, *, force: bool = False) -> TaskRun: ...

    def read_task_run_states(self, task_run_id: str) -> list[State]: ...

    # ---- logs -------------------------------------------------------------------------------
    def write_logs(self, records: Sequence[LogRecord]) -> None:
        """One transaction for the whole batch."""

    def read_logs(
        self, *, flow_run_id: str | None = None, task_run_id: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[LogRecord]:
        """Oldest first; ``after_id`` pages/tails."""

    # ---- task result cache ------------------------------------------------------------------
    def read_cache(self, cache_key: str) -> dict[str, Any] | None:
        """The stored result reference for ``cache_key`` unless missing or expired."""

    def write_cache(self, cache_key: str, result: dict[str, Any], expiration: dt.datetime | None) -> None: ...

    # ---- blocks -----------------------------------------------------------------------------
    def save_block_document(
        self, block_type: str, name: str, data: dict[str, Any], *, schema_version: int = 1, overwrite: bool = False
    ) -> BlockDocument:
        """Raise ObjectAlreadyExists when taken and not ``overwrite``."""

    def read_block_document(self, block_type: str, name: str) -> BlockDocument:
        """Raise ObjectNotFound naming the existing names of that type."""

    def read_block_documents(self, block_type: str | None = None) -> list[BlockDocument]: ...

    def delete_block_document(self, block_type: str, name: str) -> None: ...

    # ---- deployments ------------------------------------------------------------------------
    def upsert_deployment(self, deployment: Deployment) -> Deployment:
        """Create or replace by (flow_name, name); keeps the id of an existing one."""

    def read_deployment(self, deployment_id: str) -> Deployment: ...

    def read_deployment_by_name(self, full_name: str) -> Deployment:
        """``'flow-name/deployment-name'``; ObjectNotFound lists close names."""

    def read_deployments(self, *, flow_name: str | None = None, work_pool_name: str | None = None) -> list[Deployment]: ...

    def delete_deployment(self, deployment_id: str) -> None: ...

    # ---- work pools and workers -------------------------------------------------------------
    def create_work_pool(self, pool: WorkPool, *, overwrite: bool = False) -> WorkPool: ...

    def read_work_pool(self, name: str) -> WorkPool: ...

    def read_work_pools(self) -> list[WorkPool]: ...

    def set_work_pool_paused(self, name: str, paused: bool) -> WorkPool:
        """Pause (the pool's runs stay SCHEDULED; no worker claims them) or resume a pool (admin)."""

    def delete_work_pool(self, name: str) -> None: ...

    def worker_heartbeat(self, work_pool_name: str, worker_name: str, *, hostname: str | None = None, pid: int | None = None) -> None: ...

    def read_workers(self, work_pool_name: str) -> list[Worker]: ...

    # ---- work queues (inside work pools; see fleetflow.orchestrator.queues) -------------------
    def create_work_queue(self, work_pool_name: str, name: str, *, priority: int = 1,
                          concurrency_limit: int | None = None, description: str | None = None) -> WorkQueue:
        """A new queue of the pool; ObjectAlreadyExists when the pool has one of that name."""

    def read_work_queues(self, work_pool_name: str | None = None) -> list[WorkQueue]:
        """By pool, then priority, then name (every pool's when ``work_pool_name`` is None)."""

    def read_work_queue(self, work_pool_name: str, name: str) -> WorkQueue:
        """Raise ObjectNotFound saying how to create it."""

    def update_work_queue(self, work_pool_name: str, name: str, **fields: Any) -> WorkQueue:
        """Set ``is_paused``, ``priority``, ``concurrency_limit`` or ``description``."""

    def delete_work_queue(self, work_pool_name: str, name: str) -> None: ...

    def set_deployment_work_queue(self, deployment_id: str, work_queue_name: str | None) -> None:
        """Put a deployment's runs in a queue (None: the pool's ``default`` queue)."""

    def read_deployment_work_queue(self, deployment_id: str) -> str:
        """The queue a deployment's runs belong to (``default`` unless set)."""

    # ---- API keys (server auth) -------------------------------------------------------------
    def create_api_key(self, name: str, scope: Scope, *, expires: dt.datetime | None = None) -> tuple[ApiKey, str]:
        """A new key: its record and the secret, which is shown once and stored only hashed."""

    def read_api_keys(self) -> list[ApiKey]:
        """Every key (never the secret), newest first."""

    def revoke_api_key(self, name: str) -> ApiKey:
        """Revoke by name; ObjectNotFound lists the existing names."""

    # ---- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Release connections (pooled database connections or HTTP keep-alives)."""
