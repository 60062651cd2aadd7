"""Prefect-compatible ``prefect.runtime``: facts about the run executing this code.

    from fleetflow.runtime import flow_run, deployment, task_run
    flow_run.name, flow_run.parameters, deployment.name, task_run.name

Each attribute is read when accessed; outside a run it is None (``parameters`` is ``{}``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .engine.context import flow_run_ctx, task_run_ctx


def _flow_run() -> Any:
    ctx = flow_run_ctx.get()
    return ctx.flow_run if ctx is not None else None


def _client() -> Any:
    ctx = flow_run_ctx.get()
    return ctx.client if ctx is not None else None


class _FlowRun:
    """``flow_run.id``, ``name``, ``flow_name``, ``parameters``, ``tags``, ``parent_flow_run_id``,
    ``parent_deployment_id``, ``scheduled_start_time``, ``run_count``."""

    @property
    def id(self) -> str | None:
        run = _flow_run()
        return run.id if run else None

    @property
    def name(self) -> str | None:
        run = _flow_run()
        return run.name if run else None

    @property
    def flow_name(self) -> str | None:
        run = _flow_run()
        return run.flow_name if run else None

    @property
    def parameters(self) -> dict[str, Any]:
        run = _flow_run()
        return dict(run.parameters) if run else {}

    @property
    def tags(self) -> list[str]:
        run = _flow_run()
        return list(run.tags) if run else []

    @property
    def run_count(self) -> int:
        run = _flow_run()
        return _fresh(run).run_count if run else 0

    @property
    def parent_flow_run_id(self) -> str | None:
        run = _flow_run()
        return run.parent_flow_run_id if run else None

    @property
    def parent_deployment_id(self) -> str | None:
        parent = self.parent_flow_run_id
        return _client().read_flow_run(parent).deployment_id if parent else None

    @property
    def scheduled_start_time(self) -> dt.datetime | None:
        run = _flow_run()
        if run is None:
            return None
        return run.expected_start_time or run.created or run.start_time


def _fresh(run: Any) -> Any:
    return _client().read_flow_run(run.id)


class _Deployment:
    """``deployment.id``, ``name``, ``flow_run_id``, ``parameters``, ``version`` (None when the
    run was not created from a deployment)."""

    def _record(self) -> Any:
        run = _flow_run()
        if run is None or not run.deployment_id:
            return None
        return _client().read_deployment(run.deployment_id)

    @property
    def id(self) -> str | None:
        run = _flow_run()
        return run.deployment_id if run else None

    @property
    def name(self) -> str | None:
        record = self._record()
        return record.name if record else None

    @property
    def flow_run_id(self) -> str | None:
        run = _flow_run()
        return run.id if run and run.deployment_id else None

    @property
    def parameters(self) -> dict[str, Any]:
        record = self._record()
        return dict(record.parameters) if record else {}

    @property
    def version(self) -> str | None:
        record = self._record()
        return record.version if record else None


class _TaskRun:
    """``task_run.id``, ``name``, ``task_name``, ``parameters``, ``run_count``."""

    @property
    def id(self) -> str | None:
        ctx = task_run_ctx.get()
        return ctx.task_run.id if ctx else None

    @property
    def name(self) -> str | None:
        ctx = task_run_ctx.get()
        return ctx.task_run.name if ctx else None

    @property
    def task_name(self) -> str | None:
        ctx = task_run_ctx.get()
        return ctx.task.name if ctx else None

    @property
    def parameters(self) -> dict[str, Any]:
        ctx = task_run_ctx.get()
        return dict(ctx.parameters) if ctx else {}

    @property
    def run_count(self) -> int:
        ctx = task_run_ctx.get()
        return _client().read_task_run(ctx.task_run.id).run_count if ctx else 0


flow_run = _FlowRun()
deployment = _Deployment()
task_run = _TaskRun()

__all__ = ["flow_run", "deployment", "task_run"]
