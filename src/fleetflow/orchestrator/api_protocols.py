"""Parts of the client protocol (and the records they return) the store's area modules add (artifacts, variables, tag
concurrency limits; flow run usage records), apart from the SQL that implements them: the
protocol is imported by every process on its way to the first task, the SQL (SQLAlchemy) only
by processes that use it."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Protocol, Sequence

from pydantic import BaseModel, ConfigDict, Field

SlotOutcome = Literal["acquired", "full", "unlimited"]


class Artifact(BaseModel):
    """A markdown document, table or link a run published (``fleetflow.artifacts``)."""

    model_config = ConfigDict(defer_build=True)  # built on first use: not on the path to the first task

    id: str
    key: str | None = Field(default=None, description="Optional stable key; the newest artifact of a key is its latest.")
    type: str = Field(description="'markdown', 'table' or 'link'.")
    description: str | None = None
    data: Any = Field(default=None, description="Markdown text, table rows, or {'link': ..., 'link_text': ...}.")
    flow_run_id: str | None = None
    task_run_id: str | None = None
    created: dt.datetime | None = None


class Variable(BaseModel):
    """A named string value shared by flows (``fleetflow.variables``)."""

    model_config = ConfigDict(defer_build=True)  # built on first use: not on the path to the first task

    id: str
    name: str
    value: str
    tags: list[str] = Field(default_factory=list)
    created: dt.datetime | None = None
    updated: dt.datetime | None = None


class ConcurrencyLimit(BaseModel):
    """At most ``concurrency_limit`` task runs tagged ``tag`` run at once, across processes."""

    model_config = ConfigDict(defer_build=True)  # built on first use: not on the path to the first task

    tag: str
    concurrency_limit: int
    active_slots: list[str] = Field(default_factory=list, description="Task runs holding a slot now.")
    created: dt.datetime | None = None


class ExtrasAPI(Protocol):
    def create_artifact(self, type: str, data: Any, *, key: str | None = None, description: str | None = None,
                        flow_run_id: str | None = None, task_run_id: str | None = None) -> Artifact: ...

    def read_artifacts(self, *, key: str | None = None, flow_run_id: str | None = None, limit: int = 200) -> list[Artifact]:
        """Newest first."""

    def set_variable(self, name: str, value: str, *, tags: Sequence[str] = (), overwrite: bool = False) -> Variable: ...

    def read_variable(self, name: str) -> Variable | None: ...

    def read_variables(self) -> list[Variable]: ...

    def delete_variable(self, name: str) -> None: ...

    def create_concurrency_limit(self, tag: str, limit: int) -> ConcurrencyLimit: ...

    def read_concurrency_limits(self) -> list[ConcurrencyLimit]: ...

    def delete_concurrency_limit(self, tag: str) -> None: ...

    def acquire_concurrency_slot(self, tag: str, task_run_id: str) -> SlotOutcome:
        """Atomically take a slot: 'acquired', 'full' (try later) or 'unlimited' (no limit)."""

    def release_concurrency_slot(self, tag: str, task_run_id: str) -> None: ...


class UsageAPI(Protocol):
    def write_flow_run_usage(self, flow_run_id: str, usage: dict[str, Any]) -> None:
        """Store (or replace) the run's usage record; ObjectNotFound when the run is missing."""

    def read_flow_run_usage(self, flow_run_id: str) -> dict[str, Any] | None:
        """The run's usage record, or None when it has none."""

    def read_flow_run_usages(self, flow_run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Usage records by run id, for up to 1000 runs (runs without one are left out)."""
