"""Launch attempts and run leases: the store side of exactly-once launches.

* A worker's claim (SCHEDULED -> PENDING) gives the worker a lease on the run.
* Before the infrastructure starts, :meth:`begin_launch_attempt` records a new attempt number
  and a random token; only that token may start the run.
* The runner's :meth:`claim_launch` moves PENDING -> RUNNING for *its* token in one conditional
  UPDATE; a second runner for the same attempt, or one for a stale attempt, is refused
  (:class:`~fleetflow.exceptions.StaleLaunch`) and exits without running user code.
* Whoever executes a run renews its lease (:meth:`renew_leases`); any worker, the scheduler,
  the server or ``fleetflow flow-run reconcile`` sweeps expired leases
  (:meth:`read_expired_leases`, :meth:`take_over_lease`) and decides with
  :func:`fleetflow.worker.reconcile.decide`.

Every operation is one conditional UPDATE, so two reconcilers never both act on a run.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, Sequence

import sqlalchemy as sa

from ..exceptions import ObjectNotFound, StaleLaunch
from ..states import State, StateType
from . import tables as t
from . import transitions as tr
from .base import StoreBase, utcnow
from .runs import flow_run_from_row
from .schemas import FlowRun, Worker

_FR, _W = t.flow_runs, t.workers
_INSERT_STATES = t.states.insert()
# States in which someone is responsible for a run. SCHEDULED counts only with a lease: an
# in-process retry (AwaitingRetry) whose runner sleeps before trying again.
LEASED_STATES = (StateType.SCHEDULED.value, StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value)
_UNLEASED_ACTIVE = (StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value)


def _expiry(seconds: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=seconds)


def new_launch_token() -> str:
    return secrets.token_hex(16)


class LeasesMixin(StoreBase):
    """Launch attempts, runner claims, leases and worker names."""

    # ---- launch attempts ---------------------------------------------------------------------
    def begin_launch_attempt(self, flow_run_id: str, lease_owner: str, *, lease_seconds: float) -> FlowRun | None:
        """Record a new attempt (number + token) for a PENDING run leased by ``lease_owner``,
        before its infrastructure starts. None when the run is no longer this owner's to launch."""
        stmt = (
            sa.update(_FR)
            .where(_FR.c.id == flow_run_id, _FR.c.state_type == StateType.PENDING.value, _FR.c.lease_owner == lease_owner)
            .values(launch_attempt=_FR.c.launch_attempt + 1, launch_token=new_launch_token(),
                    lease_expires=_expiry(lease_seconds), infrastructure_pid=None)
            .returning(*_FR.c)
        )
        with self._write() as conn:
            row = conn.execute(stmt).first()
        return flow_run_from_row(row) if row else None

    def claim_launch(self, flow_run_id: str, launch_token: str, lease_owner: str, *, lease_seconds: float,
                     handle: str | None = None) -> FlowRun:
        """The runner's claim: PENDING -> RUNNING only for the current attempt's token, and the
        lease passes to the runner. Raises StaleLaunch (with why) for any other runner."""
        state = State(type=StateType.RUNNING, message="started by its launch attempt")
        stmt = (
            sa.update(_FR)
            .where(_FR.c.id == flow_run_id, _FR.c.state_type == StateType.PENDING.value, _FR.c.launch_token == launch_token)
            .values(**_running_columns(state), lease_owner=lease_owner, lease_expires=_expiry(lease_seconds),
                    infrastructure_pid=sa.func.coalesce(_FR.c.infrastructure_pid, handle))
            .returning(*_FR.c)
        )
        with self._write() as conn:
            row = conn.execute(stmt).first()
            if row is None:
                found = conn.execute(sa.select(_FR).where(_FR.c.id == flow_run_id)).first()
                raise _stale(flow_run_id, launch_token, found)
            conn.execute(_INSERT_STATES, tr.history_rows([state], flow_run_id=flow_run_id))
        return flow_run_from_row(row)

    # ---- leases ------------------------------------------------------------------------------
    def renew_leases(self, lease_owner: str, *, lease_seconds: float, take: Sequence[str] = ()) -> list[str]:
        """Extend every lease ``lease_owner`` holds on a run still in progress; also take back
        the runs in ``take`` (the runner's own runs, if a reconciler re-attached meanwhile).
        Returns the ids renewed."""
        owned = _FR.c.lease_owner == lease_owner
        if take:
            owned = sa.or_(owned, _FR.c.id.in_(list(take)))
        stmt = (
            sa.update(_FR)
            .where(owned, _FR.c.state_type.in_(LEASED_STATES))
            .values(lease_owner=lease_owner, lease_expires=_expiry(lease_seconds))
            .returning(_FR.c.id)
        )
        with self._write() as conn:
            return list(conn.execute(stmt).scalars())

    def acquire_lease(self, flow_run_id: str, lease_owner: str, *, lease_seconds: float) -> None:
        """Start leasing a run this process executes itself (an in-process flow)."""
        with self._write() as conn:
            conn.execute(sa.update(_FR).where(_FR.c.id == flow_run_id)
                         .values(lease_owner=lease_owner, lease_expires=_expiry(lease_seconds)))

    def read_expired_leases(self, *, work_pool_name: str | None = None, pooled: bool | None = None,
                            unleased_grace_seconds: float = 60.0, limit: int = 500) -> list[FlowRun]:
        """Runs in progress whose lease lapsed -- or that never had one and have not changed
        state for ``unleased_grace_seconds`` -- oldest expiry first. ``work_pool_name`` picks a
        pool; ``pooled=False`` picks runs outside every pool (script flows), True only pooled."""
        now = utcnow()
        expired = sa.and_(_FR.c.lease_expires.is_not(None), _FR.c.lease_expires < now,
                          _FR.c.state_type.in_(LEASED_STATES))
        never = sa.and_(_FR.c.lease_expires.is_(None), _FR.c.state_type.in_(_UNLEASED_ACTIVE),
                        _FR.c.state_timestamp < now - dt.timedelta(seconds=unleased_grace_seconds))
        query = sa.select(_FR).where(sa.or_(expired, never))
        if work_pool_name is not None:
            query = query.where(_FR.c.work_pool_name == work_pool_name)
        if pooled is not None:
            query = query.where(_FR.c.work_pool_name.is_not(None) if pooled else _FR.c.work_pool_name.is_(None))
        query = query.order_by(sa.func.coalesce(_FR.c.lease_expires, _FR.c.state_timestamp)).limit(limit)
        with self._read() as conn:
            return [flow_run_from_row(r) for r in conn.execute(query)]

    def take_over_lease(self, run: FlowRun, lease_owner: str, *, lease_seconds: float) -> FlowRun | None:
        """Compare-and-set the lease of ``run`` as read by :meth:`read_expired_leases`: only one
        reconciler wins; None when the lease changed meanwhile (renewed, or taken by another)."""
        stmt = (
            sa.update(_FR)
            .where(_FR.c.id == run.id, _FR.c.lease_owner.is_not_distinct_from(run.lease_owner),
                   _FR.c.lease_expires.is_not_distinct_from(run.lease_expires),
                   _FR.c.state_type == (run.state_type.value if run.state_type else None))
            .values(lease_owner=lease_owner, lease_expires=_expiry(lease_seconds))
            .returning(*_FR.c)
        )
        with self._write() as conn:
            row = conn.execute(stmt).first()
        return flow_run_from_row(row) if row else None

    def reschedule_flow_run(self, flow_run_id: str, lease_owner: str, message: str) -> FlowRun | None:
        """A PENDING run whose launch never started user code goes back to SCHEDULED for any
        worker; its token is cleared, so a late runner of the old attempt is refused."""
        state = State(type=StateType.SCHEDULED, message=message)
        stmt = (
            sa.update(_FR)
            .where(_FR.c.id == flow_run_id, _FR.c.state_type == StateType.PENDING.value, _FR.c.lease_owner == lease_owner)
            .values(**_state_columns(state), launch_token=None, infrastructure_pid=None, worker_name=None,
                    lease_owner=None, lease_expires=None)
            .returning(*_FR.c)
        )
        with self._write() as conn:
            row = conn.execute(stmt).first()
            if row is not None:
                conn.execute(_INSERT_STATES, tr.history_rows([state], flow_run_id=flow_run_id))
        return flow_run_from_row(row) if row else None

    def relaunch_flow_run(self, flow_run_id: str, message: str, *, not_before: dt.datetime,
                          from_final: bool = False) -> FlowRun | None:
        """Back to SCHEDULED ('AwaitingRelaunch') for a new launch attempt of the same run, after
        an infrastructure failure (from PENDING/RUNNING/CANCELLING... in progress) or, with
        ``from_final``, a retry of a finished run. The token, handle, worker and lease are
        cleared; due at ``not_before``. None when the run is not in such a state."""
        state = State(type=StateType.SCHEDULED, name="AwaitingRelaunch", message=message)
        allowed = ([s.value for s in (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)]
                   if from_final else [StateType.PENDING.value, StateType.RUNNING.value])
        stmt = (
            sa.update(_FR)
            .where(_FR.c.id == flow_run_id, _FR.c.state_type.in_(allowed), _FR.c.deployment_id.is_not(None))
            .values(**_state_columns(state), launch_token=None, infrastructure_pid=None, worker_name=None,
                    lease_owner=None, lease_expires=None, expected_start_time=not_before, end_time=None)
            .returning(*_FR.c)
        )
        with self._write() as conn:
            row = conn.execute(stmt).first()
            if row is not None:
                conn.execute(_INSERT_STATES, tr.history_rows([state], flow_run_id=flow_run_id))
        return flow_run_from_row(row) if row else None

    # ---- worker names ------------------------------------------------------------------------
    def read_worker(self, work_pool_name: str, name: str) -> Worker | None:
        with self._read() as conn:
            row = conn.execute(sa.select(_W).where(_W.c.work_pool_name == work_pool_name, _W.c.name == name)).first()
        return Worker(**row._mapping) if row else None

    def claim_worker_name(self, work_pool_name: str, name: str, *, instance_id: str, hostname: str | None,
                          pid: int | None, replace: Worker | None) -> bool:
        """Take a worker name: insert it when free (``replace=None``), or replace exactly the
        holder read before (compare-and-set). False when someone else got there first."""
        values = {"work_pool_name": work_pool_name, "name": name, "hostname": hostname, "pid": pid,
                  "instance_id": instance_id, "last_heartbeat": utcnow()}
        if replace is None:
            stmt = self._insert(_W).values(values).on_conflict_do_nothing()
        else:
            stmt = (sa.update(_W).where(_W.c.work_pool_name == work_pool_name, _W.c.name == name,
                                        _W.c.instance_id.is_not_distinct_from(replace.instance_id),
                                        _W.c.last_heartbeat == replace.last_heartbeat).values(values))
        with self._write() as conn:  # RETURNING, not rowcount: psycopg reports -1 for ON CONFLICT inserts
            return conn.execute(stmt.returning(_W.c.name)).first() is not None

    def release_worker_name(self, work_pool_name: str, name: str, instance_id: str) -> None:
        """A clean shutdown frees the name at once (the row stays, for 'last seen')."""
        with self._write() as conn:
            conn.execute(sa.update(_W).where(_W.c.work_pool_name == work_pool_name, _W.c.name == name,
                                             _W.c.instance_id == instance_id).values(instance_id=None))


def _state_columns(state: State) -> dict[str, Any]:
    return {"state_type": state.type.value, "state_name": state.name, "state_message": state.message,
            "state_timestamp": state.timestamp, "state_data": state.data}


def _running_columns(state: State) -> dict[str, Any]:
    return {**_state_columns(state), "run_count": _FR.c.run_count + 1,
            "start_time": sa.func.coalesce(_FR.c.start_time, state.timestamp)}


def _stale(flow_run_id: str, token: str, found: Any) -> Exception:
    if found is None:
        return ObjectNotFound(f"No flow run with id {flow_run_id!r}.", kind="flow run", name=flow_run_id)
    m = found._mapping
    if m["launch_token"] != token:
        why = f"attempt {m['launch_attempt']} is the current one" if m["launch_token"] else "it has no launch attempt"
        return StaleLaunch(f"flow run {flow_run_id}: this runner's launch attempt is stale ({why}; the run is "
                           f"{m['state_type']}); exiting without running the flow")
    return StaleLaunch(f"flow run {flow_run_id} is already {m['state_type']} (attempt {m['launch_attempt']}): "
                       "another runner of this attempt started it; exiting without running the flow")
