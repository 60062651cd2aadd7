"""The SQLite fast path for the engine's per-task store calls.

Why this exists
---------------
Every task run costs the engine two committed write transactions: ``create_task_run`` (insert
the run + its initial history) and ``set_task_run_state`` (a conditional UPDATE ... RETURNING +
one history row). On the embedded SQLite store the database work in these is a few tens of
microseconds per statement, but each SQLAlchemy Core ``execute`` adds ~0.1 ms of Python
(execution context, compiled-cache lookup, parameter processing through several layers, event
dispatch, result-object construction) and each ``engine.begin()`` another chunk (pool checkout,
the ``begin`` event that emits ``BEGIN IMMEDIATE``, reset-on-return). With ~4-5 statements and
two transactions per task, that overhead was most of the engine's per-task budget (0.6 ms).

What it does
------------
The same statements -- compiled **once** from the SQLAlchemy constructs that the Core path
uses (:data:`.transitions.TRANSITIONS`, the ``task_runs``/``states`` inserts, the cache
statements in :mod:`.catalog`), so the SQL has one source of truth -- are executed straight on
a DBAPI ``sqlite3`` connection, with the very bind/result processors SQLAlchemy would apply
(taken from the compiled statement's types for this engine's dialect, so timestamps and JSON
are stored byte-for-byte as the Core path stores them). History rows go in with
``executemany``; the UPDATE returns the row with ``RETURNING`` (SQLite >= 3.35, which
:class:`~.service.SQLiteOrchestrator` already requires).

What it keeps
-------------
* Semantics: the same rows, the same conditional UPDATE (allowed predecessors from
  ``states._ALLOWED``), the same ``InvalidStateTransition`` / ``ObjectNotFound`` errors (shared
  :func:`.runs.raise_rejected`), the same return types. Driver errors are translated to the
  SQLAlchemy exceptions the Core path raises (``sa.exc.IntegrityError``,
  ``sa.exc.OperationalError``, ``sa.exc.StatementError`` for unserialisable values).
* Concurrency: one dedicated connection per store (checked out of the engine's pool once, so it
  gets the same pragmas: WAL, ``busy_timeout``, foreign keys, driver autocommit) used only
  while holding the store's per-file, in-process write lock -- which every writer of this
  process already takes -- so threads never share it concurrently. Transactions begin with
  ``BEGIN IMMEDIATE``, so other processes queue on ``busy_timeout`` exactly as before.
  Reads that cannot get the connection at once fall back to the Core path (they never wait on
  a writer). A forked child re-acquires its own connection.

PostgreSQL keeps the shared Core path (its per-statement cost is dominated by the network).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
import weakref
from typing import Any, Callable, Mapping, Sequence, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from ..states import State
from . import request_tx
from . import tables as t
from . import transitions as tr
from .base import utcnow
from .group_commit import Update
from .catalog import LOG_COLUMNS, READ_CACHE, cache_upsert
from .runs import raise_rejected, task_run_from_mapping
from .lite_statements import args_function
from .schemas import TaskRun
from .sqlite_codecs import EPOCH_PLUS as _EPOCH_PLUS, EPOCH_PLUS_TEXT as _EPOCH_PLUS_TEXT, log_time as _log_time

_T = TypeVar("_T")
_TR, _ST = t.task_runs, t.states
_HISTORY_COLUMNS = [c.key for c in _ST.c if c.key != "id"]
_INHERITED: list[Any] = []  # connections a forked child inherited from its parent


class Compiled:
    """One SQLAlchemy statement compiled for a dialect, runnable on its DBAPI connection.

    ``args(values)`` turns a dict of bind values into the positional tuple the driver takes,
    through the bind processors of the statement's types (literal binds such as the ``+ 1``
    of ``run_count`` are filled in); ``row(raw)`` turns a returned tuple into a dict keyed by
    column name, through the columns' result processors.
    """

    __slots__ = ("sql", "_plan", "_results", "args")

    def __init__(self, stmt: Any, dialect: sa.Dialect, column_keys: Sequence[str] | None = None):
        compiled = stmt.compile(dialect=dialect, column_keys=column_keys)
        if compiled.positiontup is None:
            raise ValueError(f"the {dialect.name} dialect does not use positional parameters")
        self.sql: str = compiled.string
        plan: list[tuple[str | None, Any, Any]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            impl = bind.type.dialect_impl(dialect)
            process = _datetime_memo(impl, _empty_json_shortcut(impl, impl.bind_processor(dialect)))
            if bind.required:  # supplied by the caller
                plan.append((name, process, None))
            else:  # a literal compiled as a parameter
                value = bind.effective_value
                plan.append((None, None, process(value) if process else value))
        self._plan = tuple(plan)
        self.args = args_function(self._plan)
        self._results = tuple(
            (column.key, column.type.dialect_impl(dialect).result_processor(dialect, None))
            for column in getattr(stmt, "exported_columns", ())
        )

    def processor(self, name: str) -> Callable[[Any], Any]:
        """The bind processor of parameter ``name`` (identity when it has none)."""
        for bound, process, _ in self._plan:
            if bound == name:
                return process or _same
        raise KeyError(name)

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        return {key: value if process is None else process(value) for (key, process), value in zip(self._results, raw)}


def _empty_json_shortcut(impl: Any, process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """A JSON column's bind processor that skips the serializer for ``{}`` (most state rows
    carry empty data), giving the serializer's own text for it."""
    if process is None or not isinstance(getattr(impl, "impl", impl), sa.JSON):  # JSON, or a decorated JSON
        return process
    empty = process({})

    def json_bind(value: Any) -> Any:
        return empty if type(value) is dict and not value else process(value)

    return json_bind


def _datetime_memo(impl: Any, process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """A datetime column's bind processor that formats each datetime object once: a task
    run's rows hand the same objects over several times (its PENDING and RUNNING states share
    one, start_time is the RUNNING one, end_time the final one), and formatting one costs a
    few microseconds. The memo (bounded) holds the objects it has seen, so an identity match
    is never a recycled object; datetimes are immutable, so the text stays right."""
    if process is None or not isinstance(getattr(impl, "impl", impl), sa.DateTime):
        return process
    memo: dict[int, tuple[Any, Any]] = {}

    def datetime_bind(value: Any) -> Any:
        seen = memo.get(id(value))
        if seen is not None and seen[0] is value:
            return seen[1]
        text = process(value)
        if len(memo) >= 4096:
            memo.clear()
        memo[id(value)] = (value, text)
        return text

    return datetime_bind


def _translate(exc: BaseException, sql: str | None, args: Any) -> BaseException:
    """The SQLAlchemy exception the Core path raises for ``exc`` (a driver error, or any error
    raised while processing bind values)."""
    return sa.exc.DBAPIError.instance(sql, args, exc, sqlite3.Error)  # type: ignore[arg-type]


class _Statements:
    """The hot-path statements compiled for one engine's dialect (its JSON serializer is part
    of the bind processing), built on first use."""

    def __init__(self, dialect: sa.Dialect):
        self.dialect = dialect
        self.insert_task_run = Compiled(_TR.insert(), dialect, [c.key for c in _TR.c])
        self.insert_history = Compiled(_ST.insert(), dialect, _HISTORY_COLUMNS)
        self.task_run_state = Compiled(sa.select(_TR.c.state_type).where(_TR.c.id == sa.bindparam("p_id")), dialect)
        self.write_cache = Compiled(cache_upsert(sqlite.insert(t.task_cache)), dialect, ["cache_key", "result", "expiration", "created"])
        self.read_cache = Compiled(READ_CACHE, dialect)
        self.insert_logs = Compiled(t.logs.insert(), dialect, list(LOG_COLUMNS))
        self._transitions: dict[tuple[Any, bool], Compiled] = {}

    def transition(self, proposed: Any, force: bool) -> Compiled:
        compiled = self._transitions.get((proposed, force))
        if compiled is None:
            compiled = self._transitions[(proposed, force)] = Compiled(tr.TRANSITIONS[(_TR.name, proposed, force)], self.dialect)
        return compiled


class _Connection:
    """The store's dedicated DBAPI connection: checked out of the engine's pool (so the pool's
    ``connect`` hooks configured it) and returned to it by :meth:`close` or when the store is
    garbage-collected."""

    def __init__(self, engine: sa.Engine):
        self.pid = os.getpid()
        self.fairy = engine.raw_connection()
        self.dbapi: sqlite3.Connection = self.fairy.driver_connection  # type: ignore[assignment]
        self._finalizer = weakref.finalize(self, _close_quietly, self.fairy)

    def close(self) -> None:
        self._finalizer()

    def invalidate(self) -> None:
        self._finalizer.detach()
        try:
            self.fairy.invalidate()
        except Exception:  # noqa: BLE001 - already broken; the pool replaces it
            pass


def _close_quietly(fairy: Any) -> None:
    try:
        fairy.close()
    except Exception:  # noqa: BLE001 - at interpreter exit the pool may be gone
        pass


class SQLiteFastPath:
    """Mixin for :class:`~.service.SQLiteOrchestrator`: the hot calls on the DBAPI connection.

    Expects ``self.engine`` and ``self._write_lock`` (the per-file in-process write lock).
    """

    engine: sa.Engine
    _write_lock: threading.Lock

    def _init_fast_path(self) -> None:
        self._fast_connection: _Connection | None = None
        self._fast_statements: _Statements | None = None

    # ---- plumbing ---------------------------------------------------------------------------
    def _fast_sql(self) -> _Statements:
        statements = self._fast_statements
        if statements is None:
            statements = self._fast_statements = _Statements(self.engine.dialect)
        return statements

    def _fast_dbapi(self) -> sqlite3.Connection:
        """The dedicated connection (callers hold ``_write_lock``)."""
        connection = self._fast_connection
        if connection is None or connection.pid != os.getpid():
            if connection is not None:
                # Forked: the parent's connection is not ours to use, reset or close; keep it
                # referenced so garbage collection never touches it either.
                connection._finalizer.detach()
                _INHERITED.append(connection)
            connection = self._fast_connection = _Connection(self.engine)
        return connection.dbapi

    def _fast_write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction on the dedicated connection:
        commit on success, roll back on any error. Buffered task-run records (group commit)
        are committed first. In a server request: one operation of the request's transaction
        (:mod:`.request_tx`), on its connection."""
        tx = request_tx.for_store(self)
        if tx is not None:
            return tx.run_dbapi(work)
        with self._write_lock:
            self._flush_locked()  # type: ignore[attr-defined]
            return self._fast_transaction(work)

    def _fast_transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``_fast_write`` without the lock (the caller holds ``_write_lock``)."""
        dbapi = self._fast_dbapi()
        try:
            try:
                dbapi.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _translate(exc, "BEGIN IMMEDIATE", ()) from exc
            result = work(dbapi)
            try:
                dbapi.commit()
            except sqlite3.Error as exc:
                raise _translate(exc, "COMMIT", ()) from exc
            return result
        except BaseException:
            self._fast_abort(dbapi)
            raise

    def _fast_abort(self, dbapi: sqlite3.Connection) -> None:
        try:
            if dbapi.in_transaction:
                dbapi.rollback()
        except sqlite3.Error:
            if self._fast_connection is not None:
                self._fast_connection.invalidate()
            self._fast_connection = None

    def _close_fast_path(self) -> None:
        with self._write_lock:
            if self._fast_connection is not None and self._fast_connection.pid == os.getpid():
                self._fast_connection.close()
            self._fast_connection = None

    # ---- the hot calls ----------------------------------------------------------------------
    def _insert_task_run(self, values: dict[str, Any], history: list[dict[str, Any]]) -> None:
        sql = self._fast_sql()
        run_args = _args(sql.insert_task_run, values)
        history_args = [_args(sql.insert_history, row) for row in history]

        def work(dbapi: sqlite3.Connection) -> None:
            _execute(dbapi, sql.insert_task_run, run_args)
            _execute(dbapi, sql.insert_history, history_args, many=True)

        self._fast_write(work)

    def _commit_task_runs(self, rows: list[dict[str, Any]], history: list[dict[str, Any]],
                          updates: Sequence[Update] = ()) -> list[Update]:
        """As ``StoreBase._commit_task_runs`` (one transaction, ``_write_lock`` held), on the
        dedicated connection."""
        sql = self._fast_sql()
        steps = []
        for run_id, state in updates:
            update = sql.transition(state.type, False)
            steps.append((run_id, state, update, _args(update, tr.transition_params(run_id, state)),
                          _args(sql.insert_history, tr.history_rows([state], task_run_id=run_id)[0])))
        run_args = [_args(sql.insert_task_run, row) for row in rows]
        history_args = [_args(sql.insert_history, row) for row in history]

        def work(dbapi: sqlite3.Connection) -> list[Update]:
            refused, changed = [], []
            for run_id, state, update, update_args, change_args in steps:
                if _execute(dbapi, update, update_args).fetchone() is None:
                    refused.append((run_id, state))
                else:
                    changed.append(change_args)
            if run_args:
                _execute(dbapi, sql.insert_task_run, run_args, many=True)
            if changed or history_args:
                _execute(dbapi, sql.insert_history, changed + history_args, many=True)
            return refused

        return self._fast_transaction(work)

    def _set_task_run_state_now(self, task_run_id: str, state: State, force: bool) -> TaskRun:
        sql = self._fast_sql()
        update = sql.transition(state.type, force)
        update_args = _args(update, tr.transition_params(task_run_id, state))
        history_args = _args(sql.insert_history, tr.history_rows([state], task_run_id=task_run_id)[0])

        def work(dbapi: sqlite3.Connection) -> tuple[Any, ...]:
            rows = _execute(dbapi, update, update_args).fetchall()
            if not rows:
                found = _execute(dbapi, sql.task_run_state, (task_run_id,)).fetchone()
                raise_rejected(_TR, task_run_id, state, None if found is None else _StateRow(found[0]))
            _execute(dbapi, sql.insert_history, history_args)
            return rows[0]

        return task_run_from_mapping(update.row(self._fast_write(work)))

    def write_log_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """The log shipper's batches (see :meth:`.catalog.LogsMixin.write_log_rows`): one
        ``executemany``, the timestamp through the column's bind processor, the other values
        as they are (plain strings and ints need none on SQLite)."""
        if not rows:
            return
        sql = self._fast_sql()
        compiled = sql.insert_logs
        if any(compiled.processor(name) is not _same for name in LOG_COLUMNS[:5]):  # not on pysqlite
            args = [_args(compiled, dict(zip(LOG_COLUMNS, (*row[:5], _from_unix(row[5]))))) for row in rows]
        else:
            stamp = compiled.processor("timestamp")
            if stamp(_EPOCH_PLUS) != _EPOCH_PLUS_TEXT:  # not the text format _log_time writes
                args = [(*row[:5], stamp(_from_unix(row[5]))) for row in rows]
            else:
                args = [(*row[:5], _log_time(row[5])) for row in rows]
        self._fast_write(lambda dbapi: _execute(dbapi, sql.insert_logs, args, many=True))

    def write_cache(self, cache_key: str, result: dict[str, Any], expiration: Any) -> None:
        sql = self._fast_sql()
        args = _args(sql.write_cache, {"cache_key": cache_key, "result": result, "expiration": expiration, "created": utcnow()})
        self._fast_write(lambda dbapi: _execute(dbapi, sql.write_cache, args))

    def read_cache(self, cache_key: str) -> dict[str, Any] | None:
        # A read must never wait on a writer (WAL readers do not): if the connection is busy,
        # take the Core path, which reads on a pooled connection.
        if not self._write_lock.acquire(blocking=False):
            return super().read_cache(cache_key)  # type: ignore[misc]
        try:
            sql = self._fast_sql()
            args = _args(sql.read_cache, {"p_key": cache_key, "p_now": utcnow()})
            dbapi = self._fast_dbapi()
            try:
                row = _execute(dbapi, sql.read_cache, args).fetchone()
            except BaseException:
                self._fast_abort(dbapi)
                raise
        finally:
            self._write_lock.release()
        return None if row is None else sql.read_cache.row(row)["result"]


def _same(value: Any) -> Any:
    return value


def _from_unix(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


class _StateRow:
    """What :func:`.runs.raise_rejected` reads of a re-read run row."""

    __slots__ = ("state_type",)

    def __init__(self, state_type: str | None):
        self.state_type = state_type


def _args(compiled: Compiled, values: Mapping[str, Any]) -> tuple[Any, ...]:
    try:
        return compiled.args(values)
    except Exception as exc:  # e.g. a value JSON cannot serialise: Core raises StatementError
        raise _translate(exc, compiled.sql, values) from exc


def _execute(dbapi: sqlite3.Connection, compiled: Compiled, args: Any, *, many: bool = False) -> sqlite3.Cursor:
    try:
        return dbapi.executemany(compiled.sql, args) if many else dbapi.execute(compiled.sql, args)
    except sqlite3.Error as exc:
        raise _translate(exc, compiled.sql, args) from exc
