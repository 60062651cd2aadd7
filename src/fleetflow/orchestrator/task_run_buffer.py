"""The group-commit side of a store's task runs, shared by the SQLAlchemy store
(:class:`.runs.TaskRunsMixin`) and the plain SQLite path (:class:`.lite.PlainSQLiteStore`).

Why one place: both stores buffer a new task run and the state changes that follow it in the
same :class:`.group_commit.GroupCommit` (one buffer per process, shared when the plain store
falls back to the full one), so the rules for what may be buffered and what a buffered run
reads back as must be one code. Nothing here imports SQLAlchemy (the plain path's start-up
budget); its exception class is loaded on the error path only.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Sequence

from ..states import State, StateType, construct
from .jsoncodec import json_dumps, round_trips
from .schemas import TaskRun

_UTC = dt.timezone.utc


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """A timestamp as the store's UTC columns give it back."""
    if value is None or value.tzinfo is _UTC:
        return value
    return value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)


def buffered_task_run(m: dict[str, Any], fields: Sequence[str]) -> TaskRun:
    """What reading the buffered row back would give, built from values the store made itself
    (so without pydantic's validation: this is the engine's hot path). ``fields``: the
    TaskRun fields that are columns."""
    state = construct(State, {
        "type": StateType(m["state_type"]), "name": m["state_name"], "message": m["state_message"],
        "timestamp": utc(m["state_timestamp"]), "data": m["state_data"] or {},
    }, {"_value": None, "_has_value": False, "_exception": None})
    values = {name: m[name] for name in fields}
    values.update(state=state, start_time=utc(m["start_time"]), end_time=utc(m["end_time"]))
    return construct(TaskRun, values)


def check_storable(states: Sequence[State]) -> dict[str, Any]:
    """Refuse state data the JSON columns cannot hold now, as an unbuffered write would (a
    buffered record is written later, by another thread, where nobody could handle the error),
    with the exception the Core path raises. Returns the last state's data as the column
    gives it back."""
    stored: dict[str, Any] = {}
    for state in states:
        stored = {}
        data = state.data
        if data and round_trips(data):  # JSON gives it back as it is (the engine's result refs)
            stored = data
        elif data:
            try:
                stored = json.loads(json_dumps(data))
            except (TypeError, ValueError) as exc:
                import sqlalchemy as sa

                raise sa.exc.StatementError(f"({type(exc).__qualname__}) {exc}", None, None, exc) from exc
    return stored


class BufferedTaskRuns:
    """Task-run state changes through the buffer, for a store with ``_group`` (the process's
    GroupCommit or None), ``read_flow_run``, ``flush_writes``, ``_set_task_run_state_now``
    (the committed transition, each store's own SQL) and ``_task_run_fields`` (the TaskRun
    fields that are columns)."""

    _group: Any
    _task_run_fields: Sequence[str]

    def set_task_run_state(self, task_run_id: str, state: State, *, force: bool = False) -> TaskRun:
        if self._group is not None and not force:
            buffered = self._buffer_transition(task_run_id, state)
            if buffered is not None:
                return buffered_task_run(buffered, self._task_run_fields)
        if self._group is not None and force:
            with self._group.lock:
                self._group.buffer.forget(task_run_id)  # written past the buffer: its copy is stale
        return self._set_task_run_state_now(task_run_id, state, force)  # type: ignore[attr-defined]

    def record_task_run_state(self, task_run_id: str, state: State) -> None:
        """:meth:`set_task_run_state` (without ``force``) for a caller that does not read the
        run back -- the engine, for a task run's final state: a buffered change then builds
        no model (a store-only fast path, not part of the client protocol)."""
        if self._group is not None and self._buffer_transition(task_run_id, state, row=False) is not None:
            return
        self._set_task_run_state_now(task_run_id, state, False)  # type: ignore[attr-defined]

    def _buffer_created(self, flow_run_id: str, values: dict[str, Any], states: Sequence[State],
                        history: list[dict[str, Any]]) -> bool:
        """Put a new task run in the group-commit buffer (True), once its flow run is known to
        exist (checked once per flow run, so an unknown one fails now, as without the buffer)."""
        group = self._group
        if group is None:
            return False
        check_storable(states)
        if flow_run_id not in group.known_flow_runs:
            self.read_flow_run(flow_run_id)  # type: ignore[attr-defined]  # ObjectNotFound for an unknown run
            group.remember_flow_run(flow_run_id)
        with group.lock:
            group.check_process()
            was_empty = not group.buffer
            group.buffer.add_created(values, states, history)
            group.added(was_empty)
            full = len(group.buffer) >= 4 * group.max_records
        if full:  # the flusher falls behind: this writer commits (back-pressure)
            self.flush_writes()  # type: ignore[attr-defined]
        return True

    def _buffer_transition(self, task_run_id: str, state: State, row: bool = True) -> dict[str, Any] | None:
        """Apply ``state`` in the buffer when the run's creation is still buffered, or was
        committed by this buffer ("settled", see group_commit): a copy of its row values after
        the change, or ``{}`` when ``row`` is False; else None (the change must be written now)."""
        group = self._group
        if group is None:
            return None
        stored = check_storable((state,))
        with group.lock:
            group.check_process()
            if task_run_id not in group.buffer:
                return None
            values = group.buffer.add_transition(task_run_id, state)
            values = dict(values) if row else {}
            group.added(False)
        if row:
            values["state_data"] = stored  # as a read of the row would give it back
        return values
