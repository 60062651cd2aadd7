"""Records the Orchestrator returns: runs, logs, blocks, deployments, pools, workers.

These are read models. They are pydantic so they print, serialise to JSON for the CLI and
the HTTP API, and validate when they cross a process boundary.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field

from ..states import State, StateType


# The results room (fleetflow.results) registers its loader when imported. A process that only read
# runs (``get_client().read_flow_run(id).result()``) has not imported it yet: load it then, by
# name. That is a run-time plug-in lookup, deliberately not an import of a layer above.
RESULT_LOADER_MODULE = "fleetflow.results"


def _load_default_result_loader(ref: dict[str, Any] | None) -> Any:
    import importlib

    importlib.import_module(RESULT_LOADER_MODULE)  # registers the real loader
    if _result_loader is _load_default_result_loader:
        from ..exceptions import ConfigurationError

        raise ConfigurationError(f"{RESULT_LOADER_MODULE} did not register a result loader; reinstall fleetflow")
    return _result_loader(ref)


_result_loader: Callable[[dict[str, Any] | None], Any] = _load_default_result_loader


def register_result_loader(loader: Callable[[dict[str, Any] | None], Any]) -> None:
    """Let the engine's result storage read results for :meth:`FlowRun.result`.

    The store sits below the engine and must not import it (that import made the store, the
    blocks and the client one import cycle), so the engine registers its loader here instead.
    """
    global _result_loader
    _result_loader = loader


class FlowRun(BaseModel):
    """A recorded execution of a flow (top-level, sub-flow, or launched from a deployment)."""

    # Built on first validation: the plain SQLite path (orchestrator/lite.py) constructs runs
    # from rows it decoded itself, so a script flow may never need the validator.
    model_config = ConfigDict(defer_build=True)

    id: str = Field(description="UUID of the run.")
    name: str = Field(description="Human-friendly run name.")
    flow_name: str = Field(description="Name of the flow this is a run of.")
    state: State | None = Field(default=None, description="Current state (last of the history).")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Parameters the flow is called with.")
    tags: list[str] = Field(default_factory=list, description="Free-form labels.")
    parent_task_run_id: str | None = Field(default=None, description="Task run in the parent that stands for this sub-run.")
    parent_flow_run_id: str | None = Field(default=None, description="The parent flow run, for tree views.")
    deployment_id: str | None = Field(default=None, description="Deployment this run was created from.")
    work_pool_name: str | None = Field(default=None, description="Pool whose workers may launch this run.")
    idempotency_key: str | None = Field(default=None, description="Same key + deployment -> same run.")
    infra_overrides: dict[str, Any] = Field(default_factory=dict, description="Per-run infrastructure overrides.")
    infrastructure_pid: str | None = Field(
        default=None, description="Launch handle (e.g. 'process:host:pid' or an ECS task ARN), stored before waiting."
    )
    infrastructure: dict[str, Any] = Field(
        default_factory=dict, description="What the run was launched on: kind, cpu, memory, image..."
    )
    worker_name: str | None = Field(default=None, description="Worker that claimed the run.")
    expected_start_time: dt.datetime | None = Field(default=None, description="When the run should start.")
    start_time: dt.datetime | None = Field(default=None, description="First time it entered RUNNING.")
    end_time: dt.datetime | None = Field(default=None, description="When it entered a final state.")
    run_count: int = Field(default=0, description="How many times it entered RUNNING (retries count).")
    created: dt.datetime | None = Field(default=None, description="Creation time.")
    launch_attempt: int = Field(default=0, description="Number of the latest launch attempt (0: never launched).")
    launch_token: str | None = Field(
        default=None, repr=False, description="Random token of the latest launch attempt; only its runner may start the run."
    )
    lease_owner: str | None = Field(default=None, description="Who executes the run now ('worker:...', 'process:host:pid:start').")
    lease_expires: dt.datetime | None = Field(default=None, description="When the lease lapses unless renewed.")

    @property
    def state_type(self) -> StateType | None:
        return self.state.type if self.state else None

    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's return value, read from its persisted result.

        A FAILED/CRASHED/CANCELLED run raises :class:`~fleetflow.exceptions.RunFailed` (or
        returns it, with ``raise_on_failure=False``).
        """
        from ..exceptions import MissingResult, RunFailed

        state = self.state
        if state is None or not state.is_final:
            raise MissingResult(f"flow run {self.id} is {state.type.value if state else 'new'}; it has no result yet")
        if not state.is_completed():
            err = RunFailed(
                f"flow run {self.name!r} ({self.id}) ended {state.type.value}: {state.message}", run_id=self.id, state=state
            )
            if raise_on_failure:
                raise err
            return err
        return _result_loader(state.data.get("result"))


class TaskRun(BaseModel):
    """A recorded execution of a task inside a flow run."""

    model_config = ConfigDict(defer_build=True)  # as FlowRun

    id: str
    flow_run_id: str
    task_key: str = Field(description="Stable identity of the task function.")
    name: str
    dynamic_key: str = Field(default="0", description="Distinguishes repeated calls of one task in a run.")
    cache_key: str | None = None
    state: State | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    run_count: int = 0
    created: dt.datetime | None = None


class LogRecord(BaseModel):
    """One log line of a run."""

    model_config = ConfigDict(defer_build=True)  # built on first use: not on the path to the first task

    id: int | None = None
    flow_run_id: str | None = None
    task_run_id: str | None = None
    level: int = 20
    name: str = ""
    message: str = ""
    timestamp: dt.datetime


class BlockDocument(BaseModel):
    """A saved block: its type slug, name, schema version and stored (encrypted-secret) data."""

    model_config = ConfigDict(defer_build=True)  # built on first use: not on the path to the first task

    id: str
    block_type: str = Field(description="Slug of the block class, e.g. 'ecs-task'.")
    name: str
    schema_version: int = 1
    data: dict[str, Any] = Field(default_factory=dict, description="Field values; secrets are ciphertext.")
    created: dt.datetime | None = None
    updated: dt.datetime | None = None


class Deployment(BaseModel):
    """A flow packaged to be launched by a worker: code location, infrastructure, defaults."""

    model_config = ConfigDict(defer_build=True)  # built on first use: not on the path to the first task

    id: str
    name: str
    flow_name: str
    entrypoint: str = Field(description="'path/to/file.py:function' inside the bundle.")
    path: str | None = Field(default=None, description="Working directory inside the bundle.")
    storage_block: str | None = Field(default=None, description="'type/name' of the storage block holding the bundle.")
    bundle_digest: str | None = Field(default=None, description="SHA-256 of the code bundle.")
    infrastructure_block: str | None = Field(default=None, description="'type/name' of the infrastructure block.")
    infrastructure: dict[str, Any] = Field(
        default_factory=dict, description="Inline infrastructure document when no saved block is named."
    )
    infra_overrides: dict[str, Any] = Field(default_factory=dict, description="Dot-path overrides merged onto the block.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Default parameters.")
    parameter_schema: dict[str, Any] = Field(default_factory=dict, description="JSON schema of the flow's parameters.")
    work_pool_name: str | None = None
    tags: list[str] = Field(default_factory=list)
    description: str | None = None
    version: str | None = None
    schedule: dict[str, Any] | None = Field(default=None, description="{'cron': ..., 'timezone': ...} or {'interval': seconds}.")
    infra_retries: int = Field(default=0, description="Relaunches of a run whose infrastructure failed transiently.")
    infra_retry_delay_seconds: float = Field(default=0.0, description="Seconds before each relaunch.")
    infra_retry_on: list[str] | None = Field(
        default=None, description="Non-transient causes to retry too: 'out_of_memory', 'exit_code'."
    )
    created: dt.datetime | None = None
    updated: dt.datetime | None = None

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"


class WorkPool(BaseModel):
    """A named queue of scheduled runs with a default infrastructure block."""

    model_config = ConfigDict(defer_build=True)  # built on first use: not on the path to the first task

    id: str
    name: str
    type: str = Field(default="process", description="'process' or 'ecs'.")
    infrastructure_block: str | None = Field(default=None, description="'type/name' of the default infrastructure block.")
    description: str | None = None
    concurrency_limit: int | None = None
    last_polled: dt.datetime | None = Field(default=None, description="Last time any worker asked this pool for work.")
    is_paused: bool = Field(default=False, description="A paused pool's runs stay SCHEDULED: no worker claims them "
                            "until the pool is resumed (`fleetflow work-pool pause/resume`).")
    created: dt.datetime | None = None


class Worker(BaseModel):
    """A worker process seen polling a pool."""

    model_config = ConfigDict(defer_build=True)  # built on first use: not on the path to the first task

    name: str
    work_pool_name: str
    last_heartbeat: dt.datetime
    hostname: str | None = None
    pid: int | None = None
    instance_id: str | None = Field(default=None, description="Random id of the worker process holding the name.")

