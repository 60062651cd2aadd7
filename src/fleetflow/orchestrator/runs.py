"""Flow runs, task runs and their state histories.

Task-run creation and state changes are the engine's hot path (one call each per task), so
they use prebuilt statements, one transaction per call, ``RETURNING`` instead of re-reads,
and build the returned models from values already in hand.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa

from ..exceptions import (
    ConfigurationError, InvalidStateTransition, ObjectAlreadyExists, ObjectNotFound, ParameterValidationError,
)
from ..states import State, StateType, check_transition, construct
from . import request_tx
from . import tables as t
from . import transitions as tr
from .task_run_buffer import BufferedTaskRuns
from .base import StoreBase, new_id, utcnow
from .names import run_name as _run_name
from .queues import queue_budgets, with_queue_rules
from .schemas import FlowRun, TaskRun
from .waiting import wait_until_final, waiting_for

_FR, _TR, _ST = t.flow_runs, t.task_runs, t.states
_INSERT_STATES = _ST.insert()
_INSERT_TASK_RUN = _TR.insert()
_FLOW_RUN_FIELDS = [name for name in FlowRun.model_fields if name in _FR.c]
_TASK_RUN_FIELDS = [name for name in TaskRun.model_fields if name in _TR.c]
_UPDATABLE = frozenset(
    {"name", "tags", "parameters", "infra_overrides", "infrastructure_pid", "infrastructure", "worker_name",
     "work_pool_name", "expected_start_time"}
)  # fmt: skip
_ACTIVE = (StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value)

def flow_run_from_row(row: sa.Row[Any]) -> FlowRun:
    m = row._mapping
    return FlowRun(state=tr.current_state(m), **{name: m[name] for name in _FLOW_RUN_FIELDS})


def task_run_from_row(row: sa.Row[Any]) -> TaskRun:
    return task_run_from_mapping(row._mapping)


def task_run_from_mapping(m: Mapping[str, Any]) -> TaskRun:
    return TaskRun(state=tr.current_state(m), **{name: m[name] for name in _TASK_RUN_FIELDS})


def raise_rejected(table: sa.Table, run_id: str, state: State, found: Any) -> None:
    """Explain why the conditional UPDATE moving ``run_id`` to ``state`` matched no row, given
    ``found``: the run's row re-read in the same transaction (with ``state_type``) or None."""
    kind = "flow run" if table is _FR else "task run"
    if found is None:
        raise ObjectNotFound(f"No {kind} with id {run_id!r}.", kind=kind, name=run_id)
    current = StateType(found.state_type) if found.state_type else None
    check_transition(current, state.type)  # raises with the explanatory message
    # Only reachable if the state changed between the UPDATE and this read (PostgreSQL).
    raise InvalidStateTransition(
        f"the {kind} {run_id} changed state concurrently (now {found.state_type}); "
        f"re-read it before moving it to {state.type.value}",
        current=found.state_type or "",
        proposed=state.type.value,
    )


class _TransitionMixin(StoreBase):
    def _transition(self, table: sa.Table, run_id: str, state: State, force: bool) -> sa.Row[Any]:
        """Apply ``state`` atomically (see :mod:`.transitions`) and append it to the history."""
        stmt = tr.TRANSITIONS[(table.name, state.type, force)]
        key = "flow_run_id" if table is _FR else "task_run_id"
        with self._write() as conn:
            row = conn.execute(stmt, tr.transition_params(run_id, state)).first()
            if row is None:
                self._raise_rejected(conn, table, run_id, state)
            conn.execute(_INSERT_STATES, tr.history_rows([state], **{key: run_id}))
        return row

    @staticmethod
    def _raise_rejected(conn: sa.Connection, table: sa.Table, run_id: str, state: State) -> None:
        found = conn.execute(sa.select(table.c.state_type).where(table.c.id == run_id)).first()
        raise_rejected(table, run_id, state, found)

    def _read_history(self, column: sa.Column[Any], run_id: str, kind: str, table: sa.Table) -> list[State]:
        with self._read() as conn:
            rows = conn.execute(sa.select(_ST).where(column == run_id).order_by(_ST.c.id)).all()
            if not rows and conn.execute(sa.select(table.c.id).where(table.c.id == run_id)).first() is None:
                raise ObjectNotFound(f"No {kind} with id {run_id!r}.", kind=kind, name=run_id)
        return [tr.history_state(r._mapping) for r in rows]


class FlowRunsMixin(_TransitionMixin):
    """Flow runs: create (idempotent per deployment), read, transition, claim, delete."""

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
        idempotent = deployment_id is not None and idempotency_key is not None
        if idempotent and (existing := self._find_idempotent(deployment_id, idempotency_key)):
            return existing
        state = state or State(type=StateType.PENDING)
        run_id = id or new_id()
        parent_flow = sa.select(_TR.c.flow_run_id).where(_TR.c.id == parent_task_run_id).scalar_subquery()
        values = {
            "id": run_id,
            "name": name or _run_name(),
            "flow_name": flow_name,
            "parameters": parameters or {},
            "tags": list(tags),
            "parent_task_run_id": parent_task_run_id,
            "parent_flow_run_id": parent_flow if parent_task_run_id else None,
            "deployment_id": deployment_id,
            "work_pool_name": work_pool_name,
            "idempotency_key": idempotency_key,
            "infra_overrides": infra_overrides or {},
            "infrastructure": {},
            "expected_start_time": expected_start_time,
            "created": utcnow(),
            **tr.initial_columns([state]),
        }
        try:
            with self._write() as conn:
                row = conn.execute(_FR.insert().values(values).returning(*_FR.c)).one()
                conn.execute(_INSERT_STATES, tr.history_rows([state], flow_run_id=run_id))
        except sa.exc.IntegrityError as exc:
            if idempotent and (existing := self._find_idempotent(deployment_id, idempotency_key)):
                return existing  # another caller created it between our check and insert
            raise ObjectAlreadyExists(f"A flow run with id {run_id!r} already exists.") from exc
        except (sa.exc.StatementError, TypeError, ValueError):
            # SQLite wraps the JSON serialiser's TypeError in a StatementError; psycopg raises it as is.
            unstorable = self._unstorable(flow_name, values)
            if unstorable is None:
                raise
            raise unstorable from None
        if self._group is not None:
            self._group.remember_flow_run(run_id)
        return flow_run_from_row(row)

    def _unstorable(self, flow_name: str, values: dict[str, Any]) -> ParameterValidationError | None:
        """Name the parameter the JSON columns cannot hold (instead of a raw StatementError)."""
        dumps = getattr(self.engine.dialect, "_json_serializer", None) or json.dumps
        for name, value in (values.get("parameters") or {}).items():
            try:
                dumps(value)
            except (TypeError, ValueError) as exc:
                return ParameterValidationError(
                    f"flow {flow_name!r}: parameter {name!r} cannot be stored ({exc}); pass plain data "
                    "(numbers, strings, lists, dicts) or a reference to the value", field=name)
        return None

    def _find_idempotent(self, deployment_id: str | None, key: str | None) -> FlowRun | None:
        query = sa.select(_FR).where(_FR.c.deployment_id == deployment_id, _FR.c.idempotency_key == key)
        with self._read() as conn:
            row = conn.execute(query).first()
        return flow_run_from_row(row) if row else None

    def read_flow_run(self, flow_run_id: str) -> FlowRun:
        with self._read() as conn:
            row = conn.execute(sa.select(_FR).where(_FR.c.id == flow_run_id)).first()
        if row is None:
            raise ObjectNotFound(f"No flow run with id {flow_run_id!r}.", kind="flow run", name=flow_run_id)
        return flow_run_from_row(row)

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
        query = sa.select(_FR).order_by(_FR.c.created.desc(), _FR.c.id.desc()).limit(limit)
        query = _filter_runs(query, state_types=state_types, flow_name=flow_name, deployment_id=deployment_id,
                             work_pool_name=work_pool_name, parent_flow_run_id=parent_flow_run_id,
                             worker_name=worker_name, created_after=created_after, created_before=created_before)  # fmt: skip
        if cursor:
            created, run_id = parse_cursor(cursor)
            query = query.where(sa.tuple_(_FR.c.created, _FR.c.id) < sa.tuple_(sa.literal(created, t.UTCDateTime()), sa.literal(run_id)))
        with self._read() as conn:
            return [flow_run_from_row(r) for r in conn.execute(query)]

    def count_flow_runs(
        self,
        *,
        state_types: Iterable[StateType] | None = None,
        flow_name: str | None = None,
        work_pool_name: str | None = None,
        created_after: dt.datetime | None = None,
        limit: int = 10_000,
    ) -> int:
        inner = _filter_runs(sa.select(_FR.c.id), state_types=state_types, flow_name=flow_name,
                             work_pool_name=work_pool_name, created_after=created_after).limit(limit)  # fmt: skip
        with self._read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(inner.subquery())).scalar_one()

    def wait_for_flow_run(self, flow_run_id: str, *, timeout: float = 30.0) -> FlowRun:
        """Returns as soon as the run is final (or at the timeout): on SQLite woken by the
        commit itself, elsewhere checked every ``WAIT_POLL_INTERVAL``; all the process's waiters
        share one check (:mod:`.waiting`; the server wakes its own waiters on each state change,
        see :mod:`fleetflow.server.api.waiting`)."""
        return wait_until_final(self, flow_run_id, timeout)

    def _final_flow_runs(self, flow_run_ids: Iterable[str]) -> set[str]:
        """Which of these flow runs are final (one query for every waiter of the process)."""
        ids = list(flow_run_ids)
        if not ids:
            return set()
        final = [s.value for s in StateType if State(type=s).is_final]
        with self._read() as conn:
            return set(conn.execute(sa.select(_FR.c.id).where(_FR.c.id.in_(ids), _FR.c.state_type.in_(final))).scalars())

    def set_flow_run_state(self, flow_run_id: str, state: State, *, force: bool = False) -> FlowRun:
        return flow_run_from_row(self._transition(_FR, flow_run_id, state, force))

    def read_flow_run_states(self, flow_run_id: str) -> list[State]:
        return self._read_history(_ST.c.flow_run_id, flow_run_id, "flow run", _FR)

    def update_flow_run(self, flow_run_id: str, **fields: Any) -> FlowRun:
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ConfigurationError(
                f"update_flow_run cannot set {sorted(unknown)}; settable fields are {sorted(_UPDATABLE)} "
                "(use set_flow_run_state for states).",
                field=sorted(unknown)[0],
            )
        if not fields:
            return self.read_flow_run(flow_run_id)
        if "tags" in fields:
            fields["tags"] = list(fields["tags"])
        with self._write() as conn:
            row = conn.execute(sa.update(_FR).where(_FR.c.id == flow_run_id).values(**fields).returning(*_FR.c)).first()
        if row is None:
            raise ObjectNotFound(f"No flow run with id {flow_run_id!r}.", kind="flow run", name=flow_run_id)
        return flow_run_from_row(row)

    def delete_flow_run(self, flow_run_id: str) -> None:
        """Delete the run, its task runs, state histories (cascade) and logs."""
        task_ids = sa.select(_TR.c.id).where(_TR.c.flow_run_id == flow_run_id)
        with self._write() as conn:
            conn.execute(sa.delete(t.logs).where(t.logs.c.task_run_id.in_(task_ids)))
            conn.execute(sa.delete(t.logs).where(t.logs.c.flow_run_id == flow_run_id))
            deleted = conn.execute(sa.delete(_FR).where(_FR.c.id == flow_run_id)).rowcount
        if not deleted:
            raise ObjectNotFound(f"No flow run with id {flow_run_id!r}.", kind="flow run", name=flow_run_id)

    def claim_flow_runs(self, work_pool_name: str, worker_name: str, *, limit: int = 10,
                        queues: Sequence[str] | None = None, lease_owner: str | None = None,
                        lease_seconds: float = 30.0, wait: float = 0.0) -> list[FlowRun]:
        """Claim due runs, waiting up to ``wait`` seconds for one (see :meth:`_claim_now`)."""
        deadline = time.monotonic() + max(0.0, wait)
        feed, _ = waiting_for(self)
        seen = feed.mark()
        looked_claimable = False
        while True:
            claimed = self._claim_now(work_pool_name, worker_name, limit, queues, lease_owner, lease_seconds)
            if claimed or limit <= 0 or time.monotonic() >= deadline:
                return claimed
            if looked_claimable:  # due runs the claim may not take (paused pool, limits): no sooner than before
                time.sleep(min(WAIT_POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
            # Until a commit makes a run claimable (on SQLite: woken by the commit; the cheap
            # read keeps other commits from costing a claim transaction each).
            looked_claimable = False
            # A run scheduled for later becomes due without any commit: wake for it too.
            due = self._next_due_in(work_pool_name)
            until = deadline if due is None else min(deadline, time.monotonic() + due)
            while time.monotonic() < until:
                seen = feed.wait(seen, until)
                if self._claimable(work_pool_name, queues):
                    looked_claimable = True
                    break
                # A storm of unrelated commits (running flows) costs at most one read per pause.
                time.sleep(min(CLAIM_RECHECK_SECONDS, max(0.0, deadline - time.monotonic())))

    def _claim_now(self, work_pool_name: str, worker_name: str, limit: int, queues: Sequence[str] | None,
                   lease_owner: str | None, lease_seconds: float) -> list[FlowRun]:
        """Claim due SCHEDULED runs of the pool: each candidate is moved by a conditional
        UPDATE (``... AND state_type = 'SCHEDULED'``), so a run another worker took first is
        simply skipped. Updating the pool's ``last_polled`` first also serialises claimers of
        one pool on PostgreSQL (row lock), which keeps ``concurrency_limit`` exact, and reads
        its paused flag in the same statement (a paused pool's runs stay SCHEDULED). The claim
        gives ``lease_owner`` (default ``worker:<name>``) a lease on each run."""
        now = utcnow()
        claimed: list[sa.Row[Any]] = []
        params = {"p_worker": worker_name, "p_message": f"Claimed by worker {worker_name!r}", "p_timestamp": now,
                  "p_owner": lease_owner or f"worker:{worker_name}",
                  "p_expires": now + dt.timedelta(seconds=lease_seconds)}
        with self._write() as conn:
            pool = conn.execute(
                sa.update(t.work_pools)
                .where(t.work_pools.c.name == work_pool_name)
                .values(last_polled=now)
                .returning(t.work_pools.c.concurrency_limit, t.work_pools.c.is_paused)
            ).first()
            if pool is not None and pool.is_paused:
                return []
            limit = self._claim_budget(conn, work_pool_name, pool, limit)
            if limit <= 0:
                return []
            budgets = queue_budgets(conn, work_pool_name)  # work queues with a concurrency limit
            for run_id, queue in conn.execute(self._claim_candidates(work_pool_name, now, limit, queues)).all():
                if budgets.get(queue, 1) <= 0:
                    continue
                row = conn.execute(_CLAIM, {"p_id": run_id, **params}).first()
                if row is not None and queue in budgets:
                    budgets[queue] -= 1
                if row is not None:
                    claimed.append(row)
            if claimed:
                history = [tr.history_rows([tr.current_state(r._mapping)], flow_run_id=r.id)[0] for r in claimed]
                conn.execute(_INSERT_STATES, history)
        return [flow_run_from_row(r) for r in claimed]

    @staticmethod
    def _claim_budget(conn: sa.Connection, pool_name: str, pool: sa.Row[Any] | None, limit: int) -> int:
        if pool is None or pool.concurrency_limit is None:
            return limit
        active = conn.execute(
            sa.select(sa.func.count()).where(_FR.c.work_pool_name == pool_name, _FR.c.state_type.in_(_ACTIVE))
        ).scalar_one()
        return min(limit, pool.concurrency_limit - active)

    def _claimable(self, pool_name: str, queues: Sequence[str] | None) -> bool:
        """Whether a claim would find a due run (a read; limits are the claim's business)."""
        with self._read() as conn:
            return conn.execute(self._candidate_query(pool_name, utcnow(), 1, queues)).first() is not None

    def _next_due_in(self, pool_name: str) -> float | None:
        """Seconds until the pool's next run scheduled for later is due (None: there is none)."""
        now = utcnow()
        query = sa.select(sa.func.min(_FR.c.expected_start_time)).where(
            _FR.c.work_pool_name == pool_name, _FR.c.state_type == StateType.SCHEDULED.value,
            _FR.c.expected_start_time > now)
        with self._read() as conn:
            due = conn.execute(query).scalar_one_or_none()
        if due is None:
            return None
        if due.tzinfo is None:
            due = due.replace(tzinfo=dt.timezone.utc)
        return max(0.0, (due - now).total_seconds())

    def _claim_candidates(self, pool_name: str, now: dt.datetime, limit: int,
                          queues: Sequence[str] | None = None) -> sa.Select[Any]:
        return self._lock_claim_candidates(self._candidate_query(pool_name, now, limit, queues))

    @staticmethod
    def _candidate_query(pool_name: str, now: dt.datetime, limit: int, queues: Sequence[str] | None) -> sa.Select[Any]:
        return (
            with_queue_rules(sa.select(_FR.c.id), pool_name, queues)
            .where(
                _FR.c.work_pool_name == pool_name,
                _FR.c.state_type == StateType.SCHEDULED.value,
                # A run with a launch handle or a lease is being retried in place (AwaitingRetry).
                _FR.c.infrastructure_pid.is_(None),
                _FR.c.lease_owner.is_(None),
                sa.or_(_FR.c.expected_start_time.is_(None), _FR.c.expected_start_time <= now),
            )
            .order_by(sa.func.coalesce(_FR.c.expected_start_time, _FR.c.created), _FR.c.id)
            .limit(limit)
        )


WAIT_POLL_INTERVAL = 0.05  # seconds between checks of the embedded long-polls
CLAIM_RECHECK_SECONDS = 0.01  # least time between two "anything claimable?" reads of a waiting claim


def page_cursor(run: FlowRun) -> str:
    """The keyset cursor after ``run`` in a newest-first list (pass it as ``cursor``)."""
    return f"{run.created.isoformat() if run.created else ''}|{run.id}"


def parse_cursor(cursor: str) -> tuple[dt.datetime, str]:
    created, sep, run_id = cursor.partition("|")
    try:
        if not sep:
            raise ValueError(cursor)
        return dt.datetime.fromisoformat(created), run_id
    except ValueError:
        raise ConfigurationError(
            f"invalid page cursor {cursor!r}: pass the `next_cursor` of the previous page unchanged", field="cursor"
        ) from None


def _filter_runs(query: sa.Select[Any], *, state_types: Iterable[StateType] | None = None,
                 created_after: dt.datetime | None = None, created_before: dt.datetime | None = None,
                 **equal: Any) -> sa.Select[Any]:  # fmt: skip
    """``query`` narrowed by state types, a creation window and column equalities."""
    if state_types is not None:
        query = query.where(_FR.c.state_type.in_([StateType(s).value for s in state_types]))
    if created_after is not None:
        query = query.where(_FR.c.created >= created_after)
    if created_before is not None:
        query = query.where(_FR.c.created < created_before)
    for name, value in equal.items():
        if value is not None:
            query = query.where(_FR.c[name] == value)
    return query


_CLAIM = (
    sa.update(_FR)
    .where(
        _FR.c.id == sa.bindparam("p_id"),
        _FR.c.state_type == StateType.SCHEDULED.value,
        _FR.c.infrastructure_pid.is_(None),
        _FR.c.lease_owner.is_(None),
    )
    .values(
        state_type=StateType.PENDING.value,
        state_name="Pending",
        state_message=sa.bindparam("p_message", type_=sa.Text()),
        state_timestamp=sa.bindparam("p_timestamp", type_=t.UTCDateTime()),
        state_data=None,
        worker_name=sa.bindparam("p_worker", type_=sa.String()),
        lease_owner=sa.bindparam("p_owner", type_=sa.String()),
        lease_expires=sa.bindparam("p_expires", type_=t.UTCDateTime()),
        launch_token=None,
    )
    .returning(*_FR.c)
)



class TaskRunsMixin(BufferedTaskRuns, _TransitionMixin):
    """Task runs: the engine's hot path."""

    _task_run_fields = _TASK_RUN_FIELDS

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
        states = states or (State(type=StateType.PENDING),)
        run_id = id or new_id()
        values = {
            "id": run_id,
            "flow_run_id": flow_run_id,
            "task_key": task_key,
            "name": name,
            "dynamic_key": dynamic_key,
            "cache_key": cache_key,
            "created": utcnow(),
            **tr.initial_columns(states),
        }
        history = tr.history_rows(states, task_run_id=run_id)
        # (never buffered inside a server request: it commits with the request, see .request_tx)
        if self._group is not None and request_tx.for_store(self) is None and self._buffer_created(flow_run_id, values, states, history):
            fields = {k: values[k] for k in _TASK_RUN_FIELDS}
            fields["state"] = states[-1]
            return construct(TaskRun, fields)
        try:
            self._insert_task_run(values, history)
        except sa.exc.IntegrityError as exc:
            self.read_flow_run(flow_run_id)  # raises ObjectNotFound for an unknown flow run
            raise ObjectAlreadyExists(f"A task run with id {run_id!r} already exists.") from exc
        return TaskRun(state=states[-1], **{k: values[k] for k in _TASK_RUN_FIELDS})

    def _insert_task_run(self, values: dict[str, Any], history: list[dict[str, Any]]) -> None:
        """Insert a task run row and its initial history in one transaction (SQLite overrides
        this with its DBAPI fast path; see :mod:`.sqlite_fast`)."""
        with self._write() as conn:
            conn.execute(_INSERT_TASK_RUN, values)
            conn.execute(_INSERT_STATES, history)

    def read_task_run(self, task_run_id: str) -> TaskRun:
        self.flush_writes()  # read-your-writes (group commit)
        with self._read() as conn:
            row = conn.execute(sa.select(_TR).where(_TR.c.id == task_run_id)).first()
        if row is None:
            raise ObjectNotFound(f"No task run with id {task_run_id!r}.", kind="task run", name=task_run_id)
        return task_run_from_row(row)

    def read_task_runs(self, flow_run_id: str) -> list[TaskRun]:
        query = sa.select(_TR).where(_TR.c.flow_run_id == flow_run_id).order_by(_TR.c.created, _TR.c.id)
        self.flush_writes()
        with self._read() as conn:
            return [task_run_from_row(r) for r in conn.execute(query)]

    def _set_task_run_state_now(self, task_run_id: str, state: State, force: bool) -> TaskRun:
        """The committed transition (SQLite overrides it with its DBAPI fast path)."""
        return task_run_from_row(self._transition(_TR, task_run_id, state, force))

    def read_task_run_states(self, task_run_id: str) -> list[State]:
        self.flush_writes()
        return self._read_history(_ST.c.task_run_id, task_run_id, "task run", _TR)
