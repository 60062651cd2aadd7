"""State bookkeeping shared by flow runs and task runs: prebuilt transition statements,
the columns a run's initial history implies, and row <-> State conversion.

A transition is one conditional UPDATE, so validation and application are atomic without a
read-modify-write race::

    UPDATE <runs> SET state_... = :new, run_count = run_count + 1 (RUNNING), ...
    WHERE id = :id AND (state_type IS NULL OR state_type IN (<allowed predecessors>))
    RETURNING *

The predecessors of each proposed type are derived from :data:`fleetflow.states._ALLOWED`,
and one statement per (table, proposed type, force) is built once (on first use), so
SQLAlchemy's compiled cache serves every call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..states import _ALLOWED, TERMINAL, State, StateType, check_transition

if TYPE_CHECKING:
    import sqlalchemy as sa

# The statements need SQLAlchemy, which the plain SQLite flow path never loads (it runs their
# SQL text, generated from them: see .sqlite_sql); so TRANSITIONS is built on first use.
_TRANSITIONS: dict[tuple[str, StateType, bool], sa.Update] | None = None


def _state_params() -> dict[str, Any]:
    import sqlalchemy as sa

    from . import tables as t

    return {
        "p_type": sa.String(16),
        "p_name": sa.String(64),
        "p_message": sa.Text(),
        "p_timestamp": t.UTCDateTime(),
        "p_data": t.json_type(),
    }


def predecessors(proposed: StateType) -> list[str]:
    """State types from which ``proposed`` may be entered (a run with no state accepts all)."""
    return sorted(current.value for current, allowed in _ALLOWED.items() if proposed in allowed)


def _build(table: sa.Table, proposed: StateType, force: bool, params: dict[str, Any]) -> sa.Update:
    import sqlalchemy as sa

    c = table.c

    def bind(name: str) -> sa.BindParameter[Any]:
        return sa.bindparam(name, type_=params[name])

    values: dict[sa.Column[Any], Any] = {
        c.state_type: bind("p_type"),
        c.state_name: bind("p_name"),
        c.state_message: bind("p_message"),
        c.state_timestamp: bind("p_timestamp"),
        c.state_data: bind("p_data"),
    }
    if proposed is StateType.RUNNING:
        values[c.run_count] = c.run_count + 1
        values[c.start_time] = sa.func.coalesce(c.start_time, bind("p_timestamp"))
    if proposed in TERMINAL:
        values[c.end_time] = bind("p_timestamp")
    stmt = sa.update(table).where(c.id == sa.bindparam("p_id", type_=sa.String(36)))
    if not force:
        # Constant literals, not an expanding IN parameter: the SQL string is then fixed and
        # needs no per-call re-rendering.
        allowed = [sa.literal_column(f"'{value}'") for value in predecessors(proposed)]
        stmt = stmt.where(sa.or_(c.state_type.is_(None), c.state_type.in_(allowed)))
    return stmt.values(values).returning(*c)


def _transitions() -> dict[tuple[str, StateType, bool], sa.Update]:
    global _TRANSITIONS
    if _TRANSITIONS is None:
        from . import tables as t

        params = _state_params()
        _TRANSITIONS = {
            (table.name, proposed, force): _build(table, proposed, force, params)
            for table in (t.flow_runs, t.task_runs)
            for proposed in StateType
            for force in (False, True)
        }
    return _TRANSITIONS


def __getattr__(name: str) -> Any:
    if name == "TRANSITIONS":  # (table name, proposed type, force) -> the conditional UPDATE
        return _transitions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def transition_params(run_id: str, state: State) -> dict[str, Any]:
    """Bind values for a statement of :data:`TRANSITIONS`."""
    return {
        "p_id": run_id,
        "p_type": state.type.value,
        "p_name": state.name,
        "p_message": state.message,
        "p_timestamp": state.timestamp,
        "p_data": state.data,
    }


def initial_columns(states: Sequence[State]) -> dict[str, Any]:
    """The denormalised state columns of a run created with the history ``states``.

    Validates the sequence itself (e.g. [PENDING, RUNNING] is fine, [COMPLETED, RUNNING] is not).
    """
    previous: StateType | None = None
    run_count, start_time, end_time = 0, None, None
    for state in states:
        check_transition(previous, state.type)
        if state.type is StateType.RUNNING:
            run_count += 1
            start_time = start_time or state.timestamp
        if state.type in TERMINAL:
            end_time = state.timestamp
        previous = state.type
    last = states[-1]
    return {
        "state_type": last.type.value,
        "state_name": last.name,
        "state_message": last.message,
        "state_timestamp": last.timestamp,
        "state_data": last.data,
        "start_time": start_time,
        "end_time": end_time,
        "run_count": run_count,
    }


def apply_columns(values: dict[str, Any], current: StateType | None, state: State) -> None:
    """Update a run's column ``values`` (as :func:`initial_columns` made them) for one more
    state, after checking ``current -> state.type``: the same result as ``initial_columns`` of
    the whole history, one step at a time."""
    check_transition(current, state.type)
    if state.type is StateType.RUNNING:
        values["run_count"] += 1
        values["start_time"] = values["start_time"] or state.timestamp
    if state.type in TERMINAL:
        values["end_time"] = state.timestamp
    values["state_type"] = state.type.value
    values["state_name"] = state.name
    values["state_message"] = state.message
    values["state_timestamp"] = state.timestamp
    values["state_data"] = state.data


def history_rows(
    states: Sequence[State], *, flow_run_id: str | None = None, task_run_id: str | None = None
) -> list[dict[str, Any]]:
    """Rows for ``states`` (the history table) of one run."""
    return [
        {
            "flow_run_id": flow_run_id,
            "task_run_id": task_run_id,
            "type": s.type.value,
            "name": s.name,
            "message": s.message,
            "timestamp": s.timestamp,
            "data": s.data,
        }
        for s in states
    ]


def current_state(m: Mapping[str, Any]) -> State | None:
    """The State stored in a run row's ``state_*`` columns."""
    if m["state_type"] is None:
        return None
    return State(
        type=m["state_type"],
        name=m["state_name"],
        message=m["state_message"],
        timestamp=m["state_timestamp"],
        data=m["state_data"] or {},
    )


def history_state(m: Mapping[str, Any]) -> State:
    """A State from a row of the ``states`` table."""
    return State(type=m["type"], name=m["name"], message=m["message"], timestamp=m["timestamp"], data=m["data"] or {})
