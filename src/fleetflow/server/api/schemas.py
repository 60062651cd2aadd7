"""Request bodies of the JSON API (responses are the store's models: FlowRun, TaskRun ...)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from ...orchestrator.keys import Scope
from ...orchestrator.schemas import LogRecord, WorkPool
from ...states import State


class FlowRunCreate(BaseModel):
    flow_name: str = Field(description="Name of the flow.")
    state: State | None = Field(default=None, description="Initial state (default PENDING).")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Parameters of the run.")
    name: str | None = Field(default=None, description="Run name (generated when empty).")
    parent_task_run_id: str | None = Field(default=None, description="Task run in the parent standing for this run.")
    deployment_id: str | None = Field(default=None, description="Deployment the run belongs to.")
    work_pool_name: str | None = Field(default=None, description="Pool whose workers may launch it.")
    idempotency_key: str | None = Field(default=None, description="Same key + deployment -> same run.")
    infra_overrides: dict[str, Any] = Field(default_factory=dict, description="Per-run infrastructure overrides.")
    tags: list[str] = Field(default_factory=list, description="Labels.")
    expected_start_time: dt.datetime | None = Field(default=None, description="When it should start.")
    id: str | None = Field(default=None, description="Client-chosen id (default: generated).")


class DeploymentRunCreate(BaseModel):
    parameters: dict[str, Any] = Field(default_factory=dict, description="Merged onto the deployment's defaults.")
    idempotency_key: str | None = Field(default=None, description="Same key -> same run.")
    parent_flow_run_id: str | None = Field(default=None, description="Parent flow run to link the child to.")
    parent_dynamic_key: str | None = Field(default=None, description="Separates repeated calls in one parent.")
    flow_run_name: str | None = Field(default=None, description="Run name.")
    scheduled_time: dt.datetime | None = Field(default=None, description="When it should start (default now).")
    infra_overrides: dict[str, Any] = Field(default_factory=dict, description="Checked against the infrastructure.")
    tags: list[str] | None = Field(default=None, description="Labels (default: the deployment's).")


class StateChange(BaseModel):
    state: State = Field(description="The proposed state.")
    force: bool = Field(default=False, description="Apply even if the transition is not allowed.")


class TaskRunCreate(BaseModel):
    flow_run_id: str = Field(description="Flow run the task belongs to.")
    task_key: str = Field(description="Stable identity of the task function.")
    name: str = Field(description="Task run name.")
    dynamic_key: str = Field(default="0", description="Separates repeated calls of one task.")
    cache_key: str | None = Field(default=None, description="Cache key, if caching.")
    states: list[State] = Field(default_factory=list, description="Initial history (default [PENDING]).")
    id: str | None = Field(default=None, description="Client-chosen id.")


class LogBatch(BaseModel):
    records: list[LogRecord] = Field(description="Log lines, written in one transaction.")


class CacheWrite(BaseModel):
    result: dict[str, Any] = Field(description="Result reference.")
    expiration: dt.datetime | None = Field(default=None, description="When the entry expires.")


class BlockWrite(BaseModel):
    data: dict[str, Any] = Field(description="Field values; secrets as open markers (sealed by the server).")
    schema_version: int = Field(default=1, description="Schema version of the block class.")
    overwrite: bool = Field(default=False, description="Replace an existing block of that name.")


class WorkPoolWrite(BaseModel):
    pool: WorkPool = Field(description="The pool.")
    overwrite: bool = Field(default=False, description="Replace an existing pool of that name.")


class WorkPoolUpdate(BaseModel):
    is_paused: bool = Field(description="True pauses the pool (no worker claims its runs), false resumes it.")


class ClaimRequest(BaseModel):
    worker_name: str = Field(description="The claiming worker.")
    limit: int = Field(default=10, description="At most this many runs.")
    wait: float = Field(default=0.0, ge=0, le=60, description="Long-poll up to this many seconds for a run.")
    queues: list[str] | None = Field(default=None, description="Only runs of these work queues.")
    lease_owner: str | None = Field(default=None, description="Who leases the claimed runs (default worker:<name>).")
    lease_seconds: float = Field(default=30.0, gt=0, description="Length of the claimed runs' leases.")


class Heartbeat(BaseModel):
    worker_name: str = Field(description="Worker name.")
    hostname: str | None = Field(default=None, description="Host it runs on.")
    pid: int | None = Field(default=None, description="Its process id.")


class ApiKeyCreate(BaseModel):
    name: str = Field(description="Unique key name.")
    scope: Scope = Field(description="read, run, worker or admin.")
    expires: dt.datetime | None = Field(default=None, description="When the key stops working.")


class FlowRunUpdate(BaseModel):
    fields: dict[str, Any] = Field(description="Non-state fields to set (see update_flow_run).")


def fields(body: BaseModel, *, exclude: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    """A request body's fields as keyword arguments, nested models kept as models."""
    return {name: getattr(body, name) for name in type(body).model_fields if name not in exclude}
