"""Generates :mod:`.sqlite_sql`: the SQL text of the plain SQLite path, compiled from the
SQLAlchemy constructs of :mod:`.tables` (and :mod:`.transitions`, :mod:`.catalog`), so the
tables stay the one definition of the schema and of its statements.

    python -m fleetflow.orchestrator.sqlgen      # rewrites sqlite_sql.py next to this file

``tests/unit/test_sqlite_sql.py`` fails when the checked-in module differs from what this
renders today (a column added to a table, a new state type, a SQLAlchemy upgrade that
compiles differently): run the command above and commit the result.

Each statement is compiled for SQLite's positional (``?``) parameter style. For every
parameter the generated module records where its value comes from -- a caller's key, a
literal compiled as a parameter (e.g. the ``1`` of ``run_count + 1``), or an expanding ``IN``
list -- and which codec of :mod:`.sqlite_codecs` turns it into what SQLAlchemy's bind
processor would send; for every returned column, its key and result codec. A type whose
processor is none of those is refused here, so the fast path cannot silently store a value
differently from the Core path.
"""

from __future__ import annotations

import pprint
from pathlib import Path
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from ..states import State, StateType
from . import migrations
from . import tables as t
from . import transitions as tr
from .catalog import READ_CACHE, cache_upsert
from .jsoncodec import json_dumps
from .leases import LEASED_STATES

_FINAL = {s.value for s in StateType if State(type=s).is_final}

TARGET = Path(__file__).with_name("sqlite_sql.py")
_FR, _TR, _ST = t.flow_runs, t.task_runs, t.states

# The columns create_flow_run inserts (runs.FlowRunsMixin.create_flow_run's ``values``).
FLOW_RUN_INSERT = (
    "id", "name", "flow_name", "parameters", "tags", "parent_task_run_id", "parent_flow_run_id", "deployment_id",
    "work_pool_name", "idempotency_key", "infra_overrides", "infrastructure", "expected_start_time", "created",
    "state_type", "state_name", "state_message", "state_timestamp", "state_data", "start_time", "end_time", "run_count",
)  # fmt: skip
HISTORY_INSERT = tuple(c.key for c in _ST.c if c.key != "id")
LOG_INSERT = tuple(c.key for c in t.logs.c if c.key != "id")
CACHE_INSERT = ("cache_key", "result", "expiration", "created")


def dialect() -> sa.Dialect:
    """SQLite's dialect as the store's engine configures it (its JSON serialiser)."""
    return sa.create_engine("sqlite://", json_serializer=json_dumps).dialect


def _p(name: str, type_: Any) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=type_)


def _by_id(table: sa.Table) -> Any:
    return table.c.id == _p("p_id", sa.String(36))


def statements() -> dict[str, tuple[Any, Sequence[str] | None]]:
    """name -> (SQLAlchemy construct, the column keys an INSERT/UPDATE binds)."""
    parent_flow = sa.select(_TR.c.flow_run_id).where(_TR.c.id == _p("p_parent_task_run_id", sa.String(36))).scalar_subquery()
    lease = {"lease_owner": _p("p_owner", sa.String(500)), "lease_expires": _p("p_expires", t.UTCDateTime())}
    renew = sa.update(_FR).values(**lease).returning(_FR.c.id)
    owned = _FR.c.lease_owner == _p("p_owner_match", sa.String(500))
    found: dict[str, tuple[Any, Sequence[str] | None]] = {
        "insert_flow_run": (_FR.insert().returning(*_FR.c), FLOW_RUN_INSERT),
        "insert_subflow_run": (
            _FR.insert().values(parent_flow_run_id=parent_flow).returning(*_FR.c),
            [k for k in FLOW_RUN_INSERT if k != "parent_flow_run_id"],
        ),
        "insert_history": (_ST.insert(), HISTORY_INSERT),
        "insert_task_run": (_TR.insert(), [c.key for c in _TR.c]),
        "insert_logs": (t.logs.insert(), LOG_INSERT),
        "read_flow_run": (sa.select(_FR).where(_by_id(_FR)), None),
        "flow_run_state_type": (sa.select(_FR.c.state_type).where(_by_id(_FR)), None),
        "task_run_state_type": (sa.select(_TR.c.state_type).where(_by_id(_TR)), None),
        "update_flow_run_handle": (
            sa.update(_FR).where(_by_id(_FR)).returning(*_FR.c), ["infrastructure_pid", "infrastructure"],
        ),
        "acquire_lease": (sa.update(_FR).where(_by_id(_FR)).values(**lease), None),
        "renew_leases": (renew.where(owned, _FR.c.state_type.in_(LEASED_STATES)), None),
        "renew_leases_take": (
            renew.where(sa.or_(owned, _FR.c.id.in_(sa.bindparam("p_take", expanding=True, type_=sa.String(36)))),
                        _FR.c.state_type.in_(LEASED_STATES)),
            None,
        ),
        "read_cache": (READ_CACHE, None),
        "write_cache": (cache_upsert(sqlite.insert(t.task_cache)), CACHE_INSERT),
    }
    found.update(launch_path_statements())
    for (table, proposed, force), stmt in tr.TRANSITIONS.items():
        found[transition_name(table, proposed, force)] = (stmt, None)
    return found


def launch_path_statements() -> dict[str, tuple[Any, Sequence[str] | None]]:
    """What a launched run does before and after its flow body, and what ``run_deployment``
    does to create and wait for one, on the plain path: the worker's launch attempt and the
    runner's claim (``leases.begin_launch_attempt``, ``leases.claim_launch``), the worker's
    look at its runs in one state (``runs.read_flow_runs(worker_name=, state_types=)``), the reads of its deployment, blocks and pool
    (``catalog``), its usage record (``usage``), the linked child run
    (``deployment_runs``) and the parent's wait (``runs._final_flow_runs``)."""
    _D, _B, _P, _U = t.deployments, t.block_documents, t.work_pools, t.flow_run_usage
    stamp = _p("p_timestamp", t.UTCDateTime())
    claim = (
        sa.update(_FR)
        .where(_by_id(_FR), _FR.c.state_type == StateType.PENDING.value,
               _FR.c.launch_token == _p("p_token", sa.String(64)))
        .values(state_type=_p("p_type", sa.String(16)), state_name=_p("p_name", sa.String(64)),
                state_message=_p("p_message", sa.Text()), state_timestamp=stamp, state_data=_p("p_data", t.json_type()),
                run_count=_FR.c.run_count + 1, start_time=sa.func.coalesce(_FR.c.start_time, stamp),
                lease_owner=_p("p_owner", sa.String(500)), lease_expires=_p("p_expires", t.UTCDateTime()),
                infrastructure_pid=sa.func.coalesce(_FR.c.infrastructure_pid, _p("p_handle", sa.String(500))))
        .returning(*_FR.c)
    )
    begin = (
        sa.update(_FR)
        .where(_by_id(_FR), _FR.c.state_type == StateType.PENDING.value,
               _FR.c.lease_owner == _p("p_owner", sa.String(500)))
        .values(launch_attempt=_FR.c.launch_attempt + 1, launch_token=_p("p_token", sa.String(64)),
                lease_expires=_p("p_expires", t.UTCDateTime()), infrastructure_pid=None)
        .returning(*_FR.c)
    )
    final = [s.value for s in StateType if s.value in _FINAL]
    worker_runs = (
        sa.select(_FR)
        .where(_FR.c.state_type.in_(sa.bindparam("p_types", expanding=True, type_=sa.String(16))),
               _FR.c.worker_name == _p("p_worker", sa.String(200)))
        .order_by(_FR.c.created.desc(), _FR.c.id.desc())
        .limit(sa.bindparam("p_limit", type_=sa.Integer()))
    )
    return {
        "begin_launch_attempt": (begin, None),
        "read_worker_runs": (worker_runs, None),
        "claim_launch": (claim, None),
        "read_deployment": (sa.select(_D).where(_by_id(_D)), None),
        "read_deployment_by_name": (
            sa.select(_D).where(_D.c.flow_name == _p("p_flow_name", sa.String(200)), _D.c.name == _p("p_name", sa.String(200))),
            None,
        ),
        "read_block_document": (
            sa.select(_B).where(_B.c.block_type == _p("p_block_type", sa.String(200)), _B.c.name == _p("p_name", sa.String(200))),
            None,
        ),
        "read_work_pool": (sa.select(_P).where(_P.c.name == _p("p_name", sa.String(200))), None),
        "usage_run": (sa.select(_FR.c.deployment_id, _FR.c.created).where(_by_id(_FR)), None),
        "delete_usage": (sa.delete(_U).where(_U.c.flow_run_id == _p("p_id", sa.String(36))), None),
        "insert_usage": (_U.insert(), ("flow_run_id", "deployment_id", "usage", "created")),
        "find_idempotent_run": (
            sa.select(_FR).where(_FR.c.deployment_id == _p("p_deployment_id", sa.String(36)),
                                 _FR.c.idempotency_key == _p("p_key", sa.String(500))),
            None,
        ),
        "final_flow_runs": (
            sa.select(_FR.c.id).where(_FR.c.id.in_(sa.bindparam("p_ids", expanding=True, type_=sa.String(36))),
                                      _FR.c.state_type.in_(final)),
            None,
        ),
    }


def transition_name(table: str, proposed: StateType, force: bool) -> str:
    return f"transition:{table}:{proposed.value}:{'force' if force else 'check'}"


def _codec(type_: Any, dialect: sa.Dialect, *, result: bool) -> str | None:
    if isinstance(type_, t.UTCDateTime):
        return "datetime"
    if isinstance(type_, t.JSONColumn):
        return "json"
    if isinstance(type_, sa.Boolean) and not dialect.supports_native_boolean:
        return "bool"
    impl = type_.dialect_impl(dialect)
    processor = impl.result_processor(dialect, None) if result else impl.bind_processor(dialect)
    if processor is not None:
        raise TypeError(f"{type_!r} has a {'result' if result else 'bind'} processor on SQLite that "
                        "sqlite_codecs does not reproduce; add a codec for it")
    return None


def _bind_value(value: Any, type_: Any, dialect: sa.Dialect) -> Any:
    codec = _codec(type_, dialect, result=False)
    if codec is not None:
        raise TypeError(f"a literal {type_!r} parameter ({value!r}) is not supported; bind it")
    return value


def compile_one(stmt: Any, column_keys: Sequence[str] | None, dialect: sa.Dialect) -> tuple[str, tuple[Any, ...], tuple[Any, ...]]:
    """(SQL, parameter plan, result columns) of one statement: see the module docstring."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(column_keys) if column_keys is not None else None)
    plan: list[tuple[str, Any, str | None]] = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        if bind.expanding:
            if bind.required:
                plan.append(("expand", name, _codec(bind.type, dialect, result=False)))
            else:
                plan.append(("expand_const", tuple(_bind_value(v, bind.type, dialect) for v in bind.effective_value), None))
        elif bind.required:
            plan.append(("bind", name, _codec(bind.type, dialect, result=False)))
        else:
            plan.append(("const", _bind_value(bind.effective_value, bind.type, dialect), None))
    results = tuple((c.key, _codec(c.type, dialect, result=True)) for c in getattr(stmt, "exported_columns", ()))
    if isinstance(stmt, (sa.Insert, sa.Update)) and not stmt._returning:  # noqa: SLF001 - no public accessor
        results = ()
    return compiled.string, tuple(plan), results


def render() -> str:
    """The text of :mod:`.sqlite_sql`."""
    d = dialect()
    compiled = {name: compile_one(stmt, keys, d) for name, (stmt, keys) in statements().items()}
    header = (
        '"""GENERATED by ``python -m fleetflow.orchestrator.sqlgen`` from the SQLAlchemy tables: do not edit.\n\n'
        "The SQL of the plain SQLite path (:mod:`.lite`). STATEMENTS maps a name to (SQL, parameters,\n"
        "result columns); a parameter is (kind, caller key or literal value, codec) with kind one of\n"
        "bind, const, expand (an IN list the caller passes) and expand_const; codecs are named in\n"
        ':mod:`.sqlite_codecs`. See :mod:`.sqlgen`."""\n\n'
    )
    body = [
        f"SCHEMA_VERSION = {migrations.LATEST_VERSION}  # migrations.LATEST_VERSION: another version takes the full store\n",
        f"SCHEMA_TABLE = {t.schema_migrations.name!r}\n",
        f"FLOW_RUN_COLUMNS = {tuple(c.key for c in _FR.c)!r}\n",
        f"TASK_RUN_COLUMNS = {tuple(c.key for c in _TR.c)!r}\n",
        f"FLOW_RUN_INSERT = {FLOW_RUN_INSERT!r}\n",
        f"LOG_INSERT = {LOG_INSERT!r}\n",
        "\nSTATEMENTS = " + pprint.pformat(compiled, width=110, sort_dicts=True) + "\n",
    ]
    return header + "".join(body)


def main() -> None:
    TARGET.write_text(render())
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
