"""Work queues inside work pools (Prefect 2's agents and ``-q``): priority, concurrency limit
and a paused flag per queue, and the queue rules of the claim query.

A deployment's queue is stored beside it (``deployment_work_queues``); its runs belong to that
queue, runs of other deployments to the pool's ``default`` queue. A queue that was never
created behaves like an unpaused, unlimited queue of priority 1. Claiming takes runs of
higher-priority queues first (priority 1 before 2), skips paused queues and full queues, and
can be limited to some queues (``worker start -q``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from ..exceptions import ObjectAlreadyExists, ObjectNotFound
from . import tables as t
from .base import StoreBase, utcnow

DEFAULT_QUEUE = "default"
_WQ, _DQ, _FR = t.work_queues, t.deployment_work_queues, t.flow_runs
_ACTIVE = ("PENDING", "RUNNING", "CANCELLING", "PAUSED")


class WorkQueue(BaseModel):
    """A queue of a pool's runs."""

    model_config = ConfigDict(defer_build=True)  # built on first use: not on the path to the first task

    work_pool_name: str
    name: str
    priority: int = Field(default=1, description="Lower numbers are claimed first.")
    concurrency_limit: int | None = Field(default=None, description="Most runs of the queue active at once.")
    is_paused: bool = Field(default=False, description="A paused queue's runs are not claimed.")
    description: str | None = None
    created: dt.datetime | None = None


def queue_of_run() -> Any:
    """SQL expression: the queue of a flow run (its deployment's, else 'default')."""
    return sa.func.coalesce(_DQ.c.work_queue_name, DEFAULT_QUEUE)


def with_queue_rules(query: sa.Select[Any], pool_name: str, queues: Sequence[str] | None) -> sa.Select[Any]:
    """``select(flow_runs.id)`` with the queue rules applied, before the caller adds its own
    filters and order: the queue name as a second column, paused queues left out, only
    ``queues`` when given, and ordered by queue priority first."""
    queue = queue_of_run()
    joined = (query.add_columns(queue.label("work_queue_name"))
              .select_from(_FR.outerjoin(_DQ, _DQ.c.deployment_id == _FR.c.deployment_id)
                           .outerjoin(_WQ, sa.and_(_WQ.c.work_pool_name == pool_name, _WQ.c.name == queue))))
    joined = joined.where(sa.func.coalesce(_WQ.c.is_paused, sa.false()) == sa.false())
    if queues:
        joined = joined.where(queue.in_(list(queues)))
    return joined.order_by(sa.func.coalesce(_WQ.c.priority, 1))


def queue_budgets(conn: sa.Connection, pool_name: str) -> dict[str, int]:
    """Free slots of each queue of the pool that has a concurrency limit."""
    limited = conn.execute(
        sa.select(_WQ.c.name, _WQ.c.concurrency_limit)
        .where(_WQ.c.work_pool_name == pool_name, _WQ.c.concurrency_limit.is_not(None))
    ).all()
    if not limited:
        return {}
    rows = conn.execute(
        sa.select(_DQ.c.work_queue_name, sa.func.count())
        .select_from(_FR.outerjoin(_DQ, _DQ.c.deployment_id == _FR.c.deployment_id))
        .where(_FR.c.work_pool_name == pool_name, _FR.c.state_type.in_(_ACTIVE))
        .group_by(_DQ.c.work_queue_name)
    ).all()
    active = {(name or DEFAULT_QUEUE): count for name, count in rows}
    return {name: limit - active.get(name, 0) for name, limit in limited}


def _model(row: Any) -> WorkQueue:
    return WorkQueue(**dict(row._mapping))


class WorkQueuesMixin(StoreBase):
    def create_work_queue(self, work_pool_name: str, name: str, *, priority: int = 1,
                          concurrency_limit: int | None = None, description: str | None = None) -> WorkQueue:
        values = dict(work_pool_name=work_pool_name, name=name, priority=priority, concurrency_limit=concurrency_limit,
                      is_paused=False, description=description, created=utcnow())
        try:
            with self._write() as conn:
                conn.execute(_WQ.insert(), values)
        except sa.exc.IntegrityError:
            raise ObjectAlreadyExists(f"work queue {name!r} already exists in pool {work_pool_name!r}") from None
        return WorkQueue(**values)

    def read_work_queues(self, work_pool_name: str | None = None) -> list[WorkQueue]:
        query = sa.select(_WQ).order_by(_WQ.c.work_pool_name, _WQ.c.priority, _WQ.c.name)
        if work_pool_name is not None:
            query = query.where(_WQ.c.work_pool_name == work_pool_name)
        with self._read() as conn:
            return [_model(r) for r in conn.execute(query)]

    def read_work_queue(self, work_pool_name: str, name: str) -> WorkQueue:
        with self._read() as conn:
            row = conn.execute(sa.select(_WQ).where(_WQ.c.work_pool_name == work_pool_name, _WQ.c.name == name)).first()
        if row is None:
            raise ObjectNotFound(f"no work queue {name!r} in pool {work_pool_name!r}; create it with "
                                 f"`fleetflow work-queue create {name} -p {work_pool_name}`", kind="work-queue", name=name)
        return _model(row)

    def update_work_queue(self, work_pool_name: str, name: str, **fields: Any) -> WorkQueue:
        """Set ``is_paused``, ``priority``, ``concurrency_limit`` or ``description``."""
        allowed = {k: v for k, v in fields.items() if k in ("is_paused", "priority", "concurrency_limit", "description")}
        with self._write() as conn:
            updated = conn.execute(sa.update(_WQ).where(_WQ.c.work_pool_name == work_pool_name, _WQ.c.name == name)
                                   .values(**allowed)).rowcount
        if not updated:
            self.read_work_queue(work_pool_name, name)  # raises the helpful ObjectNotFound
        return self.read_work_queue(work_pool_name, name)

    def delete_work_queue(self, work_pool_name: str, name: str) -> None:
        with self._write() as conn:
            deleted = conn.execute(sa.delete(_WQ).where(_WQ.c.work_pool_name == work_pool_name, _WQ.c.name == name)).rowcount
        if not deleted:
            self.read_work_queue(work_pool_name, name)

    def set_deployment_work_queue(self, deployment_id: str, work_queue_name: str | None) -> None:
        """Put a deployment's runs in a queue (None: the pool's default queue)."""
        with self._write() as conn:
            conn.execute(sa.delete(_DQ).where(_DQ.c.deployment_id == deployment_id))
            if work_queue_name and work_queue_name != DEFAULT_QUEUE:
                conn.execute(_DQ.insert(), {"deployment_id": deployment_id, "work_queue_name": work_queue_name})

    def read_deployment_work_queue(self, deployment_id: str) -> str:
        with self._read() as conn:
            name = conn.execute(sa.select(_DQ.c.work_queue_name).where(_DQ.c.deployment_id == deployment_id)).scalar()
        return name or DEFAULT_QUEUE
