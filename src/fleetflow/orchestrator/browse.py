"""Read-only queries the web UI needs beyond the client interface: a tag filter on the runs
list, the last runs of many deployments in one round trip, child counts for the sub-flow
tree, and log pages filtered by level and text (newest page first for "jump to latest").

Every query is bounded (LIMIT) and served by an index (see the "web UI list indexes"
migration), so pages stay fast at millions of runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, NamedTuple, Sequence

import sqlalchemy as sa

from ..states import StateType
from . import tables as t
from .base import StoreBase
from .schemas import FlowRun, LogRecord

_FR, _L, _TR = t.flow_runs, t.logs, t.task_runs
_STATE_TYPES = {s.value: s for s in StateType}  # a dict lookup: StateType(value) is slow per row


class StateView(NamedTuple):
    """The current state of a listed task run (no data: lists never show results)."""

    type: StateType
    name: str
    message: str | None
    timestamp: dt.datetime | None


class TaskRunRow(NamedTuple):
    """A task run as a list shows it: plain tuples, because building a thousand pydantic
    models was most of the time of the flow-run page of a run with 1,000 task runs."""

    id: str
    name: str
    dynamic_key: str
    state: StateView | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    run_count: int


class RunMark(NamedTuple):
    """A deployment's recent run as the Deployments page uses it: its state mark and the
    right-sizing badge (which reads the state, the launched size and when it was created).
    Plain tuples with one JSON column: building full FlowRun models of 480 runs (four JSON
    columns and two pydantic models each) was most of that page's time at a million runs."""

    id: str
    name: str
    deployment_id: str
    state: StateView | None
    infrastructure: dict[str, Any]
    created: dt.datetime | None

    @property
    def state_type(self) -> StateType | None:
        return self.state.type if self.state else None


_MARK_COLUMNS = (_FR.c.id, _FR.c.name, _FR.c.deployment_id, _FR.c.state_type, _FR.c.state_name, _FR.c.state_message,
                 _FR.c.state_timestamp, _FR.c.infrastructure, _FR.c.created)  # fmt: skip


def _mark(row: Any) -> RunMark:
    state = StateView(_STATE_TYPES[row[3]], row[4] or "", row[5], row[6]) if row[3] else None
    return RunMark(row[0], row[1], row[2], state, row[7] or {}, row[8])


class BrowseMixin(StoreBase):
    """The UI's list and search queries (expects the runs mixin for row conversion)."""

    def browse_flow_runs(
        self,
        *,
        state_types: Iterable[StateType] | None = None,
        flow_name: str | None = None,
        deployment_id: str | None = None,
        work_pool_name: str | None = None,
        tag: str | None = None,
        created_after: dt.datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> list[FlowRun]:
        """Newest first, like ``read_flow_runs``, plus a tag filter (a run's tags are a JSON list)."""
        from .runs import _filter_runs, flow_run_from_row, parse_cursor

        query = sa.select(_FR).order_by(_FR.c.created.desc(), _FR.c.id.desc()).limit(limit)
        query = _filter_runs(query, state_types=state_types, flow_name=flow_name, deployment_id=deployment_id,
                             work_pool_name=work_pool_name, created_after=created_after)  # fmt: skip
        if tag:
            query = query.where(_tag_clause(tag))
        if cursor:
            created, run_id = parse_cursor(cursor)
            query = query.where(sa.tuple_(_FR.c.created, _FR.c.id) < sa.tuple_(sa.literal(created, t.UTCDateTime()), sa.literal(run_id)))
        with self._read() as conn:
            return [flow_run_from_row(r) for r in conn.execute(query)]

    def count_browsed_flow_runs(self, *, tag: str | None = None, limit: int = 10_000, **filters: Any) -> int:
        """How many runs match (at most ``limit``: equal means "at least")."""
        from .runs import _filter_runs

        inner = _filter_runs(sa.select(_FR.c.id), **filters).limit(limit)
        if tag:
            inner = inner.where(_tag_clause(tag))
        with self._read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(inner.subquery())).scalar_one()

    def recent_runs_of_deployments(self, deployment_ids: Sequence[str], *, per: int = 10,
                                   state_types: Iterable[StateType] | None = None) -> dict[str, list[RunMark]]:
        """The last ``per`` runs of each deployment (in ``state_types`` when given), newest
        first, as :class:`RunMark` rows: one UNION ALL of small LIMIT queries, each served by
        the (deployment_id, created, id) index read backwards (a window function would rank
        every run of each). The Deployments page's run marks, and its right-sizing badges
        (the last COMPLETED and CRASHED runs of every deployment)."""
        found: dict[str, list[RunMark]] = {d: [] for d in deployment_ids}
        if not deployment_ids:
            return found
        states = [StateType(s).value for s in state_types] if state_types is not None else None
        parts = []
        for d in deployment_ids:
            part = sa.select(*_MARK_COLUMNS).where(_FR.c.deployment_id == d)
            if states is not None:
                part = part.where(_FR.c.state_type.in_(states))
            parts.append(part.order_by(_FR.c.created.desc(), _FR.c.id.desc()).limit(per))
        query = sa.union_all(*[p.subquery().select() for p in parts]) if len(parts) > 1 else parts[0]
        with self._read() as conn:
            for row in conn.execute(query):
                found[row[2]].append(_mark(row))
        for runs in found.values():  # UNION ALL keeps no order across its parts
            runs.sort(key=lambda r: (r.created, r.id), reverse=True)
        return found

    def browse_task_runs(self, flow_run_id: str) -> list[TaskRunRow]:
        """A run's task runs, oldest first, as light rows."""
        columns = (_TR.c.id, _TR.c.name, _TR.c.dynamic_key, _TR.c.state_type, _TR.c.state_name, _TR.c.state_message,
                   _TR.c.state_timestamp, _TR.c.start_time, _TR.c.end_time, _TR.c.run_count)  # fmt: skip
        query = sa.select(*columns).where(_TR.c.flow_run_id == flow_run_id).order_by(_TR.c.created, _TR.c.id)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [TaskRunRow(r[0], r[1], r[2], StateView(_STATE_TYPES[r[3]], r[4] or "", r[5], r[6]) if r[3] else None,
                           r[7], r[8], r[9]) for r in rows]  # fmt: skip

    def count_children(self, flow_run_ids: Sequence[str]) -> dict[str, int]:
        """How many child runs each of ``flow_run_ids`` has (absent: none)."""
        if not flow_run_ids:
            return {}
        query = (
            sa.select(_FR.c.parent_flow_run_id, sa.func.count())
            .where(_FR.c.parent_flow_run_id.in_(list(flow_run_ids)))
            .group_by(_FR.c.parent_flow_run_id)
        )
        with self._read() as conn:
            return {parent: n for parent, n in conn.execute(query)}

    def search_logs(
        self, flow_run_id: str, *, min_level: int = 0, text: str | None = None, after_id: int = 0,
        limit: int = 500, latest: bool = False,
    ) -> list[LogRecord]:  # fmt: skip
        """A run's log lines at or above ``min_level`` containing ``text`` (case-insensitive),
        oldest first; ``latest`` returns the newest ``limit`` of them instead of the first."""
        query = sa.select(_L).where(_L.c.flow_run_id == flow_run_id, _L.c.id > after_id).limit(limit)
        if min_level:
            query = query.where(_L.c.level >= min_level)
        if text:
            query = query.where(sa.func.lower(_L.c.message).contains(text.lower(), autoescape=True))
        query = query.order_by(_L.c.id.desc() if latest else _L.c.id)
        with self._read() as conn:
            # The columns are the model's fields, already typed by the table: no validation
            # (150-5,000 lines per call on the flow-run page, its tail and its download).
            rows = [LogRecord.model_construct(**r._mapping) for r in conn.execute(query)]
        return rows[::-1] if latest else rows


def _tag_clause(tag: str) -> sa.ColumnElement[bool]:
    """Runs whose JSON tag list holds ``tag`` exactly, matched on the list's JSON text (both
    dialects render ``["a", "b"]``; the quotes around the tag make the match exact)."""
    import json

    return sa.cast(_FR.c.tags, sa.Text()).contains(json.dumps(tag), autoescape=True)
