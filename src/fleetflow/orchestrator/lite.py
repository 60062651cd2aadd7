"""The plain SQLite path: what a ``python script.py`` flow needs of the embedded store, on
``sqlite3`` alone, without loading SQLAlchemy.

Why this exists
---------------
Start-up (issue 13: < 0.3 s from ``python script.py`` to the first task body). Importing
SQLAlchemy and the store's Core statements is ~200 ms of CPU, more than half of the budget,
and a script flow on an existing SQLite store needs only a dozen statements: create its run,
its states, its lease, task runs and their states (group commit), log lines, a few reads.

What it does
------------
:func:`open_store` returns a :class:`PlainSQLiteStore` when the URL is a plain SQLite file
whose schema is current (one read of ``schema_migrations``), else the full
:class:`~.service.Orchestrator` (which migrates). The plain store runs the SQL text of
:mod:`.sqlite_sql`, generated from the SQLAlchemy constructs of :mod:`.tables` (one source of
truth; a unit test fails when the generated text differs from what SQLAlchemy compiles today),
with the bind/result codecs of :mod:`.sqlite_codecs` -- so it writes the same rows, byte for
byte, as the Core path.

Anything else -- a method it does not cover, an argument shape it does not cover (e.g. an
idempotent deployment run), the engine of the store -- is served by the full SQLAlchemy store,
created on first need and transparently (``__getattr__``). Both share this process's per-file
write lock, one group-commit buffer, and the same exception classes: a driver error is raised as
the SQLAlchemy exception the Core path raises (SQLAlchemy is imported then, on the error path).

Error paths that need the Core path's exact explanation (a rejected transition, a value the
JSON columns cannot hold) import it lazily too; nothing is written before they are reached.

Transactions: one ``BEGIN IMMEDIATE`` ... ``COMMIT`` per write on a dedicated connection used
only under the write lock (:meth:`PlainSQLiteStore._transaction`, the seam for a request-scoped
transaction hook); reads are autocommit statements, on that connection when no write holds it
(a run process then opens one connection, not two: ~1 ms of CPU each in a forked child), else
on a connection per thread (WAL readers never wait on the writer).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence, TypeVar

from ..exceptions import ObjectAlreadyExists, ObjectNotFound
from ..settings import get_settings
from ..states import State, StateType, construct
from . import sqlite_sql as sql
from . import transitions as tr
from .base import StoreBase, new_id, utcnow
from .group_commit import Update
from .names import run_name
from .schemas import BlockDocument, Deployment, FlowRun, LogRecord, TaskRun, WorkPool
from .lite_statements import Statement as _Statement, statement
from .sqlite_codecs import log_time
from .sqlite_batches import insert_rows
from .task_run_buffer import BufferedTaskRuns
from .sqlite_files import SQLITE_BUSY_TIMEOUT_MS, private_sqlite_files, process_write_lock, sqlite_on_connect

if TYPE_CHECKING:
    from .service import SQLiteOrchestrator

_T = TypeVar("_T")
_FLOW_RUN_FIELDS = [name for name in FlowRun.model_fields if name in sql.FLOW_RUN_COLUMNS]
_TASK_RUN_FIELDS = [name for name in TaskRun.model_fields if name in sql.TASK_RUN_COLUMNS]
_HANDLE_FIELDS = frozenset({"infrastructure_pid", "infrastructure"})
_INHERITED: list[sqlite3.Connection] = []  # connections a forked child inherited: never touched
_PREFIXES = ("sqlite:///", "sqlite+pysqlite:///")


def plain_sqlite_database(url: str) -> str | None:
    """The database path of a plain SQLite file URL (``sqlite:///path``), or None for any URL
    the plain path leaves to SQLAlchemy (other backends, query options, URI filenames,
    escapes, in-memory databases)."""
    for prefix in _PREFIXES:
        if url.startswith(prefix):
            database = url[len(prefix):]
            if database and database != ":memory:" and not database.startswith("file:") and not any(c in database for c in "?%#"):
                return database
    return None


def open_store(url: str | None = None) -> Any:
    """The embedded store at ``url`` (default: the settings' store): the plain SQLite path when
    it can serve it (see the module docstring), else ``Orchestrator.create(url)``."""
    settings = get_settings()
    url = url or settings.resolved_database_url()
    database = plain_sqlite_database(url)
    plain = database is not None and settings.plain_sqlite
    if plain:
        store = PlainSQLiteStore.open(url, database)  # type: ignore[arg-type]
        if store is not None:
            return store
    from .service import Orchestrator, SQLiteOrchestrator

    full = Orchestrator.create(url)
    if plain and isinstance(full, SQLiteOrchestrator):
        # The full store has just created or migrated the file: from now on this process
        # works as every later one will, on the plain path (with the full store kept for
        # what the plain path leaves to it, instead of building a second engine).
        store = PlainSQLiteStore.open(url, database)  # type: ignore[arg-type]
        if store is not None:
            store._full = full
            return store
    return full


_LOG_COLUMNS = ("flow_run_id", "task_run_id", "level", "name", "message", "timestamp")


def _log_insert() -> _Statement:
    """The log insert, checked to take the shipper's tuples as they are (see write_log_rows)."""
    insert = statement("insert_logs")
    plan = sql.STATEMENTS["insert_logs"][1]
    if tuple(key for _, key, _ in plan) != _LOG_COLUMNS or any(codec for _, _, codec in plan[:5]) or plan[5][2] != "datetime":
        raise RuntimeError("sqlite_sql.insert_logs changed shape: update PlainSQLiteStore.write_log_rows")
    return insert


_INSERT_LOGS = _log_insert()


def _transition(table: str, proposed: StateType, force: bool) -> _Statement:
    return statement(f"transition:{table}:{proposed.value}:{'force' if force else 'check'}")


def _translate(exc: BaseException, text: str | None, args: Any) -> BaseException:
    """The SQLAlchemy exception the Core path raises for a driver error (or a bind error)."""
    import sqlalchemy as sa

    return sa.exc.DBAPIError.instance(text, args, exc, sqlite3.Error)  # type: ignore[arg-type]


def _is_integrity(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.IntegrityError) or isinstance(exc.__cause__, sqlite3.IntegrityError)


class _BindError(Exception):
    """A value the codecs could not convert (e.g. state data JSON cannot hold)."""


def _args(stmt: _Statement, values: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    try:
        return stmt.args(values)
    except (TypeError, ValueError) as exc:
        raise _BindError(str(exc)) from exc


def _run(dbapi: sqlite3.Connection, text: str, args: Any, *, many: bool = False) -> sqlite3.Cursor:
    try:
        return dbapi.executemany(text, args) if many else dbapi.execute(text, args)
    except sqlite3.Error as exc:
        raise _translate(exc, text, args) from exc


def flow_run_from_mapping(m: Mapping[str, Any]) -> FlowRun:
    """A run from a row the codecs decoded (every value already of its field's type, so no
    validation: the model's validator need not even be built; a test compares with Core's)."""
    return FlowRun.model_construct(state=tr.current_state(m), **{name: m[name] for name in _FLOW_RUN_FIELDS})


def task_run_from_mapping(m: Mapping[str, Any]) -> TaskRun:
    return TaskRun.model_construct(state=tr.current_state(m), **{name: m[name] for name in _TASK_RUN_FIELDS})


# ---- a launched run's path, and run_deployment's ------------------------------------------
# (kept apart from the task-run parts above and below: the flusher's code changes on its own)

CLAIM_MESSAGE = "started by its launch attempt"  # leases.claim_launch's; the equivalence test compares rows


def validated_model(model: type[_T], m: Mapping[str, Any]) -> _T:
    """A model from a decoded row, validated as ``catalog._model`` builds it from a Core row."""
    return model(**{name: m[name] for name in model.model_fields if name in m})  # type: ignore[attr-defined]


class _Mapped:
    """A decoded row where the Core path's helpers expect a SQLAlchemy row (``._mapping``)."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: Mapping[str, Any]):
        self._mapping = mapping


class LaunchPathMixin:
    """On the plain path: everything a forked or launched run does around its flow body -- the
    claim of its launch attempt, the reads of its deployment, blocks and pool, its usage
    record -- and what ``run_deployment`` does to create its child and wait for it. Each is the
    Core path's operation (``leases``, ``catalog``, ``usage``, ``deployment_runs``, ``runs``) on
    the generated SQL, writing the same rows (``tests/unit/test_sqlite_plain_launch_path.py``);
    the error paths that need the Core path's explanation (a hint listing the names there
    are) go to the full store."""

    _write_now: Callable[..., Any]
    _read_one: Callable[..., Any]
    _fetch: Callable[..., Any]
    full_store: Callable[[], Any]
    database: str

    def begin_launch_attempt(self, flow_run_id: str, lease_owner: str, *, lease_seconds: float) -> FlowRun | None:
        from .leases import new_launch_token  # the worker's: its store has loaded SQLAlchemy already

        begin = statement("begin_launch_attempt")
        args = begin.args({"p_id": flow_run_id, "p_owner": lease_owner, "p_token": new_launch_token(),
                           "p_expires": utcnow() + dt.timedelta(seconds=lease_seconds)})
        raw = self._write_now(lambda dbapi: _run(dbapi, *args).fetchone())
        return None if raw is None else flow_run_from_mapping(begin.row(raw))

    def claim_launch(self, flow_run_id: str, launch_token: str, lease_owner: str, *, lease_seconds: float,
                     handle: str | None = None) -> FlowRun:
        state = State(type=StateType.RUNNING, message=CLAIM_MESSAGE)
        claim, read = statement("claim_launch"), statement("read_flow_run")
        args = claim.args({**tr.transition_params(flow_run_id, state), "p_token": launch_token, "p_owner": lease_owner,
                           "p_expires": utcnow() + dt.timedelta(seconds=lease_seconds), "p_handle": handle})
        history_args = statement("insert_history").args(tr.history_rows([state], flow_run_id=flow_run_id)[0])

        def work(dbapi: sqlite3.Connection) -> tuple[Any, ...]:
            raw = _run(dbapi, *args).fetchone()
            if raw is None:
                found = _run(dbapi, *read.args({"p_id": flow_run_id})).fetchone()
                from .leases import _stale  # the Core path's explanation (its module loads SQLAlchemy)

                raise _stale(flow_run_id, launch_token, None if found is None else _Mapped(read.row(found)))
            _run(dbapi, *history_args)
            return raw

        return flow_run_from_mapping(claim.row(self._write_now(work)))

    def read_flow_runs(self, **filters: Any) -> list[FlowRun]:
        """The worker's question each tick -- its runs in some states (``worker_name`` and
        ``state_types``, newest first, up to ``limit``) -- on the generated SQL; any other
        filter on the Core path (``runs.read_flow_runs``)."""
        if filters.get("state_types") is not None:
            filters["state_types"] = list(filters["state_types"])  # an iterable is read once
        given = {k for k, v in filters.items() if v is not None}
        unlimited = "limit" in filters and filters["limit"] is None
        if unlimited or not ({"worker_name", "state_types"} <= given <= {"worker_name", "state_types", "limit"}):
            return self.full_store().read_flow_runs(**filters)
        stmt = statement("read_worker_runs")
        types = [StateType(s).value for s in filters["state_types"]]
        text, args = stmt.args({"p_types": types, "p_worker": filters["worker_name"], "p_limit": filters.get("limit", 200)})
        return [flow_run_from_mapping(stmt.row(raw)) for raw in self._fetch(text, args, every=True)]

    def read_deployment(self, deployment_id: str) -> Deployment:
        found = self._read_one(statement("read_deployment"), {"p_id": deployment_id})
        if found is None:
            raise ObjectNotFound(f"No deployment with id {deployment_id!r}.", kind="deployment", name=deployment_id)
        return validated_model(Deployment, found)

    def read_deployment_by_name(self, full_name: str) -> Deployment:
        flow_name, _, name = full_name.partition("/")
        found = self._read_one(statement("read_deployment_by_name"), {"p_flow_name": flow_name, "p_name": name}) if name else None
        if found is None:  # the full store's error lists the deployments there are
            return self.full_store().read_deployment_by_name(full_name)
        return validated_model(Deployment, found)

    def read_block_document(self, block_type: str, name: str) -> BlockDocument:
        found = self._read_one(statement("read_block_document"), {"p_block_type": block_type, "p_name": name})
        if found is None:
            return self.full_store().read_block_document(block_type, name)
        return validated_model(BlockDocument, found)

    def read_work_pool(self, name: str) -> WorkPool:
        found = self._read_one(statement("read_work_pool"), {"p_name": name})
        if found is None:
            return self.full_store().read_work_pool(name)
        return validated_model(WorkPool, found)

    def write_flow_run_usage(self, flow_run_id: str, usage: dict[str, Any]) -> None:
        if not isinstance(usage, dict):
            return self.full_store().write_flow_run_usage(flow_run_id, usage)  # its error
        read, delete, insert = statement("usage_run"), statement("delete_usage"), statement("insert_usage")

        def work(dbapi: sqlite3.Connection) -> None:
            raw = _run(dbapi, *read.args({"p_id": flow_run_id})).fetchone()
            if raw is None:
                raise ObjectNotFound(f"No flow run with id {flow_run_id!r}.", kind="flow run", name=flow_run_id)
            run = read.row(raw)
            _run(dbapi, *delete.args({"p_id": flow_run_id}))
            _run(dbapi, *_args(insert, {"flow_run_id": flow_run_id, "deployment_id": run["deployment_id"],
                                        "usage": usage, "created": run["created"] or utcnow()}))

        try:
            self._write_now(work)
        except _BindError:  # rolled back; the Core path raises its error for the value
            self.full_store().write_flow_run_usage(flow_run_id, usage)

    # ---- run_deployment: create the linked child, wait for it ------------------------------
    def create_flow_run_from_deployment(self, deployment: str, **kwargs: Any) -> FlowRun:
        """``deployment_runs``' operation itself (its checks and idempotency), on this store's
        reads and its one write transaction (:meth:`_insert_linked_run`)."""
        from .deployment_runs import DeploymentRunsMixin

        return DeploymentRunsMixin.create_flow_run_from_deployment(self, deployment, **kwargs)  # type: ignore[arg-type]

    def _deployment_by_ref(self, ref: str) -> Deployment:
        from .deployment_runs import DeploymentRunsMixin

        return DeploymentRunsMixin._deployment_by_ref(self, ref)  # type: ignore[arg-type]

    def _find_idempotent(self, deployment_id: str | None, key: str | None) -> FlowRun | None:
        found = self._read_one(statement("find_idempotent_run"), {"p_deployment_id": deployment_id, "p_key": key})
        return None if found is None else flow_run_from_mapping(found)

    def _insert_linked_run(self, flow_name: str, state: State, run: dict[str, Any], parent_flow_run_id: str | None,
                           link_key: str, dynamic: str | None) -> FlowRun:
        """The parent's task run (PENDING -> RUNNING) and the child run, one transaction (as
        ``DeploymentRunsMixin._insert_linked_run``)."""
        run_id, parent_task_run_id, steps = new_id(), None, []
        history_insert = statement("insert_history")
        try:
            if parent_flow_run_id is not None:
                parent_task_run_id = new_id()
                history = [State(type=StateType.PENDING), State(type=StateType.RUNNING)]
                steps.append(_args(statement("insert_task_run"), {
                    "id": parent_task_run_id, "flow_run_id": parent_flow_run_id, "task_key": link_key,
                    "name": link_key.removeprefix("run_deployment:"), "dynamic_key": dynamic or "0", "cache_key": None,
                    "created": utcnow(), **tr.initial_columns(history),
                }))  # fmt: skip
                steps += [_args(history_insert, row) for row in tr.history_rows(history, task_run_id=parent_task_run_id)]
            insert = statement("insert_flow_run")
            values = {
                **run, "id": run_id, "name": run["name"] or run_name(), "flow_name": flow_name,
                "parent_task_run_id": parent_task_run_id, "parent_flow_run_id": parent_flow_run_id,
                "infrastructure": {}, "created": utcnow(), **tr.initial_columns([state]),
            }  # fmt: skip
            run_args = _args(insert, values)
            history_args = _args(history_insert, tr.history_rows([state], flow_run_id=run_id)[0])
        except _BindError:
            from .deployment_runs import DeploymentRunsMixin

            return DeploymentRunsMixin._insert_linked_run(self.full_store(), flow_name, state, run, parent_flow_run_id,
                                                          link_key, dynamic)

        def work(dbapi: sqlite3.Connection) -> tuple[Any, ...]:
            for step in steps:
                _run(dbapi, *step)
            row = _run(dbapi, *run_args).fetchone()
            _run(dbapi, *history_args)
            return row

        return flow_run_from_mapping(insert.row(self._write_now(work)))

    def wait_for_flow_run(self, flow_run_id: str, *, timeout: float = 30.0) -> FlowRun:
        """As ``runs.FlowRunsMixin.wait_for_flow_run``: woken by the commit that ends the run."""
        from .waiting import wait_until_final

        return wait_until_final(self, flow_run_id, timeout, self.database)

    def _final_flow_runs(self, flow_run_ids: Iterable[str]) -> set[str]:
        """Which of these flow runs are final (one query for every waiter of the process)."""
        ids = list(flow_run_ids)
        if not ids:
            return set()
        text, args = statement("final_flow_runs").args({"p_ids": ids})
        return {raw[0] for raw in self._fetch(text, args, every=True)}


class PlainSQLiteStore(BufferedTaskRuns, LaunchPathMixin, StoreBase):
    """The embedded SQLite store without SQLAlchemy (see the module docstring)."""

    dialect_name = "sqlite"
    _task_run_fields = _TASK_RUN_FIELDS

    @classmethod
    def open(cls, url: str, database: str) -> PlainSQLiteStore | None:
        """The store on ``database`` if its schema is current, else None (the full store then
        migrates it, or explains why it cannot open it)."""
        path = Path(database).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        private_sqlite_files(path)
        store = cls(url, str(path))
        try:
            current = store._schema_version() == sql.SCHEMA_VERSION
        except sqlite3.Error:
            current = False
        if not current:
            store._close_connections()
            return None
        return store

    def __init__(self, url: str, database: str):
        # StoreBase.__init__ takes an engine: this store has none (the full store does).
        self.url = url
        self.database = database
        self._group_lock = threading.Lock()
        self._write_lock = process_write_lock(database)
        self._full: SQLiteOrchestrator | None = None
        self._full_guard = threading.Lock()
        self._writer_conn: sqlite3.Connection | None = None
        self._writer_pid = 0
        self._readers = threading.local()

    # ---- connections ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        dbapi = sqlite3.connect(self.database, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        sqlite_on_connect(dbapi, None)  # the pragmas every connection of the store gets
        private_sqlite_files(Path(self.database), create=False)
        return dbapi

    def _writer(self) -> sqlite3.Connection:  # type: ignore[override]
        """The write connection (callers hold ``_write_lock``); a forked child opens its own."""
        if self._writer_conn is None or self._writer_pid != os.getpid():
            if self._writer_conn is not None:
                _INHERITED.append(self._writer_conn)  # the parent's: never used, reset or closed here
            self._writer_conn, self._writer_pid = self._connect(), os.getpid()
        return self._writer_conn

    def _reader(self) -> sqlite3.Connection:
        local = self._readers
        if getattr(local, "pid", None) != os.getpid():
            if getattr(local, "conn", None) is not None:
                _INHERITED.append(local.conn)
            local.conn, local.pid = self._connect(), os.getpid()
        return local.conn

    def _fetch(self, text: str, args: Any, *, every: bool = False) -> Any:
        """One read: on the write connection when it is free (outside a write it is in no
        transaction, so it reads what is committed, as a reader does; a short-lived run
        process then opens one connection instead of two), else on this thread's reader."""
        lock = self._write_lock
        if lock.acquire(blocking=False):
            try:
                cursor = _run(self._writer(), text, args)
                return cursor.fetchall() if every else cursor.fetchone()
            finally:
                lock.release()
        cursor = _run(self._reader(), text, args)
        return cursor.fetchall() if every else cursor.fetchone()

    def _schema_version(self) -> int:
        if self._fetch("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (sql.SCHEMA_TABLE,)) is None:
            return 0
        return self._fetch(f"SELECT max(version) FROM {sql.SCHEMA_TABLE}", ())[0] or 0

    def _close_connections(self) -> None:
        with self._write_lock:
            if self._writer_conn is not None and self._writer_pid == os.getpid():
                self._writer_conn.close()
            self._writer_conn = None
        conn = getattr(self._readers, "conn", None)
        if conn is not None and getattr(self._readers, "pid", None) == os.getpid():
            conn.close()
        self._readers = threading.local()

    # ---- transactions -----------------------------------------------------------------------
    def _write_now(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work`` in one write transaction, after the buffered task-run records (group commit)."""
        with self._write_lock:
            self._flush_locked()
            return self._transaction(work)

    def _transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` around ``work`` (``_write_lock`` held); rolled back on
        any error."""
        dbapi = self._writer()
        try:
            _run(dbapi, "BEGIN IMMEDIATE", ())
            result = work(dbapi)
            _run(dbapi, "COMMIT", ())
            return result
        except BaseException:
            self._abort(dbapi)
            raise

    def _abort(self, dbapi: sqlite3.Connection) -> None:
        try:
            if dbapi.in_transaction:
                dbapi.rollback()
        except sqlite3.Error:
            self._writer_conn = None  # broken: the next write opens a new one

    def _read_one(self, stmt: _Statement, values: Mapping[str, Any]) -> dict[str, Any] | None:
        text, args = stmt.args(values)
        raw = self._fetch(text, args)
        return None if raw is None else stmt.row(raw)

    def _commit_lock(self) -> Any:
        return self._write_lock

    # ---- the full store, for everything else ------------------------------------------------
    def full_store(self) -> SQLiteOrchestrator:
        """The SQLAlchemy store on the same file (created once, on first need), sharing this
        store's write lock and group-commit buffer."""
        full = self._full
        if full is None:
            with self._full_guard:
                full = self._full
                if full is None:
                    import sqlalchemy as sa

                    from .service import SQLiteOrchestrator

                    full = SQLiteOrchestrator(SQLiteOrchestrator.create_engine(sa.make_url(self.url)))
                    full._group = self._group
                    self._full = full
        return full

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_full", "_full_guard"):
            raise AttributeError(name)
        return getattr(self.full_store(), name)

    def enable_group_commit(self, window: float, max_records: int = 1000) -> None:
        StoreBase.enable_group_commit(self, window, max_records)
        if self._full is not None:
            self._full._group = self._group

    def dispose(self) -> None:
        """Commit buffered records, close the connections (and the full store's pool)."""
        full, self._full = self._full, None
        self._close_group()
        if full is not None:
            full._group = None
            full.dispose()
        self._close_connections()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # ---- flow runs --------------------------------------------------------------------------
    def create_flow_run(self, flow_name: str, *, state: State | None = None, parameters: dict[str, Any] | None = None,
                        name: str | None = None, parent_task_run_id: str | None = None,
                        deployment_id: str | None = None, work_pool_name: str | None = None,
                        idempotency_key: str | None = None, infra_overrides: dict[str, Any] | None = None,
                        tags: Sequence[str] = (), expected_start_time: Any = None,
                        id: str | None = None) -> FlowRun:  # noqa: A002 - the interface's name
        kwargs = dict(state=state, parameters=parameters, name=name, parent_task_run_id=parent_task_run_id,
                      deployment_id=deployment_id, work_pool_name=work_pool_name, idempotency_key=idempotency_key,
                      infra_overrides=infra_overrides, tags=tags, expected_start_time=expected_start_time, id=id)
        if deployment_id is not None and idempotency_key is not None:  # idempotent: the Core path's logic
            return self.full_store().create_flow_run(flow_name, **kwargs)
        state = state or State(type=StateType.PENDING)
        run_id = id or new_id()
        values = {
            "id": run_id, "name": name or run_name(), "flow_name": flow_name, "parameters": parameters or {},
            "tags": list(tags), "parent_task_run_id": parent_task_run_id, "parent_flow_run_id": None,
            "p_parent_task_run_id": parent_task_run_id, "deployment_id": deployment_id,
            "work_pool_name": work_pool_name, "idempotency_key": idempotency_key,
            "infra_overrides": infra_overrides or {}, "infrastructure": {},
            "expected_start_time": expected_start_time, "created": utcnow(), **tr.initial_columns([state]),
        }  # fmt: skip
        insert = statement("insert_subflow_run" if parent_task_run_id else "insert_flow_run")
        history = statement("insert_history")
        try:
            run_args = _args(insert, values)
            history_args = _args(history, tr.history_rows([state], flow_run_id=run_id)[0])
        except _BindError:  # e.g. a parameter JSON cannot hold: the Core path names it
            return self.full_store().create_flow_run(flow_name, **kwargs)

        def work(dbapi: sqlite3.Connection) -> tuple[Any, ...]:
            row = _run(dbapi, *run_args).fetchone()
            _run(dbapi, *history_args)
            return row

        try:
            raw = self._write_now(work)
        except Exception as exc:
            if _is_integrity(exc):
                raise ObjectAlreadyExists(f"A flow run with id {run_id!r} already exists.") from exc
            raise
        if self._group is not None:
            self._group.remember_flow_run(run_id)
        return flow_run_from_mapping(insert.row(raw))

    def read_flow_run(self, flow_run_id: str) -> FlowRun:
        found = self._read_one(statement("read_flow_run"), {"p_id": flow_run_id})
        if found is None:
            raise ObjectNotFound(f"No flow run with id {flow_run_id!r}.", kind="flow run", name=flow_run_id)
        return flow_run_from_mapping(found)

    def update_flow_run(self, flow_run_id: str, **fields: Any) -> FlowRun:
        if set(fields) != _HANDLE_FIELDS:  # the engine's launch handle only; the rest: the Core path
            return self.full_store().update_flow_run(flow_run_id, **fields)
        update = statement("update_flow_run_handle")
        try:
            args = _args(update, {"p_id": flow_run_id, **fields})
        except _BindError:
            return self.full_store().update_flow_run(flow_run_id, **fields)
        raw = self._write_now(lambda dbapi: _run(dbapi, *args).fetchone())
        if raw is None:
            raise ObjectNotFound(f"No flow run with id {flow_run_id!r}.", kind="flow run", name=flow_run_id)
        return flow_run_from_mapping(update.row(raw))

    def set_flow_run_state(self, flow_run_id: str, state: State, *, force: bool = False) -> FlowRun:
        return flow_run_from_mapping(self._transition("flow_runs", flow_run_id, state, force, flow_run_id=flow_run_id))

    def _transition(self, table: str, run_id: str, state: State, force: bool, **owner: str) -> dict[str, Any]:
        """Apply ``state`` atomically (the generated conditional UPDATE) and append it to the
        history; the row after the change."""
        update = _transition(table, state.type, force)
        try:
            update_args = _args(update, tr.transition_params(run_id, state))
            history_args = _args(statement("insert_history"), tr.history_rows([state], **owner)[0])
        except _BindError as exc:
            raise _translate(exc.__cause__ or exc, update.sql, None) from exc.__cause__
        check = statement(f"{table[:-1]}_state_type")

        def work(dbapi: sqlite3.Connection) -> tuple[Any, ...]:
            raw = _run(dbapi, *update_args).fetchone()
            if raw is None:
                found = _run(dbapi, *check.args({"p_id": run_id})).fetchone()
                _raise_rejected(table, run_id, state, found)
            _run(dbapi, *history_args)
            return raw

        return update.row(self._write_now(work))

    # ---- leases -----------------------------------------------------------------------------
    def acquire_lease(self, flow_run_id: str, lease_owner: str, *, lease_seconds: float) -> None:
        args = statement("acquire_lease").args(
            {"p_id": flow_run_id, "p_owner": lease_owner, "p_expires": utcnow() + dt.timedelta(seconds=lease_seconds)})
        self._write_now(lambda dbapi: _run(dbapi, *args))

    def renew_leases(self, lease_owner: str, *, lease_seconds: float, take: Sequence[str] = ()) -> list[str]:
        stmt = statement("renew_leases_take" if take else "renew_leases")
        args = stmt.args({"p_owner": lease_owner, "p_owner_match": lease_owner, "p_take": list(take),
                          "p_expires": utcnow() + dt.timedelta(seconds=lease_seconds)})
        return self._write_now(lambda dbapi: [raw[0] for raw in _run(dbapi, *args).fetchall()])

    # ---- logs and the task cache ------------------------------------------------------------
    def write_logs(self, records: Sequence[LogRecord]) -> None:
        if not records:
            return
        insert = statement("insert_logs")
        try:  # plain attribute reads: model_dump costs microseconds per line
            rows = [_args(insert, {name: getattr(r, name) for name in _LOG_COLUMNS})[1] for r in records]
        except _BindError:
            return self.full_store().write_logs(records)
        self._write_now(lambda dbapi: _run(dbapi, insert.sql, rows, many=True))

    def write_log_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """The log shipper's batches as tuples (as ``catalog.LogsMixin.write_log_rows``)."""
        if not rows:
            return
        # The values go in as they are (the generated statement has no codec for the first
        # five columns, checked at import) and the time through log_time: datetime_bind's text.
        args = [(*row[:5], log_time(row[5])) for row in rows]
        self._write_now(lambda dbapi: insert_rows(_run, dbapi, _INSERT_LOGS.sql, args))

    def read_cache(self, cache_key: str) -> dict[str, Any] | None:
        found = self._read_one(statement("read_cache"), {"p_key": cache_key, "p_now": utcnow()})
        return None if found is None else found["result"]

    def write_cache(self, cache_key: str, result: dict[str, Any], expiration: Any) -> None:
        values = {"cache_key": cache_key, "result": result, "expiration": expiration, "created": utcnow()}
        try:
            args = _args(statement("write_cache"), values)
        except _BindError:
            return self.full_store().write_cache(cache_key, result, expiration)
        self._write_now(lambda dbapi: _run(dbapi, *args))

    # ---- task runs (the engine's hot path; the same steps as runs.TaskRunsMixin) ------------
    def create_task_run(self, flow_run_id: str, task_key: str, name: str, *, dynamic_key: str = "0",
                        cache_key: str | None = None, states: Sequence[State] = (),
                        id: str | None = None) -> TaskRun:  # noqa: A002 - the interface's name
        states = states or (State(type=StateType.PENDING),)
        run_id = id or new_id()
        values = {"id": run_id, "flow_run_id": flow_run_id, "task_key": task_key, "name": name,
                  "dynamic_key": dynamic_key, "cache_key": cache_key, "created": utcnow(), **tr.initial_columns(states)}
        history = tr.history_rows(states, task_run_id=run_id)
        if self._group is not None and self._buffer_created(flow_run_id, values, states, history):
            fields = {k: values[k] for k in _TASK_RUN_FIELDS}
            fields["state"] = states[-1]
            return construct(TaskRun, fields)  # values the store made: no validation (hot path)
        insert, history_insert = statement("insert_task_run"), statement("insert_history")
        try:
            run_args = _args(insert, values)
            history_args = [_args(history_insert, row)[1] for row in history]
        except _BindError:
            return self.full_store().create_task_run(flow_run_id, task_key, name, dynamic_key=dynamic_key,
                                                     cache_key=cache_key, states=states, id=run_id)

        def work(dbapi: sqlite3.Connection) -> None:
            _run(dbapi, *run_args)
            _run(dbapi, history_insert.sql, history_args, many=True)

        try:
            self._write_now(work)
        except Exception as exc:
            if not _is_integrity(exc):
                raise
            self.read_flow_run(flow_run_id)  # raises ObjectNotFound for an unknown flow run
            raise ObjectAlreadyExists(f"A task run with id {run_id!r} already exists.") from exc
        return TaskRun.model_construct(state=states[-1], **{k: values[k] for k in _TASK_RUN_FIELDS})

    def _set_task_run_state_now(self, task_run_id: str, state: State, force: bool) -> TaskRun:
        return task_run_from_mapping(self._transition("task_runs", task_run_id, state, force, task_run_id=task_run_id))

    def _commit_task_runs(self, rows: list[dict[str, Any]], history: list[dict[str, Any]],
                          updates: Sequence[Update] = ()) -> list[Update]:
        """As ``StoreBase._commit_task_runs`` (one transaction, ``_write_lock`` held): the
        settled runs' changes through the generated conditional UPDATEs, then multi-row
        INSERTs of the new runs and of every history row."""
        insert, history_insert = statement("insert_task_run"), statement("insert_history")
        try:
            steps = [(run_id, state, _transition("task_runs", state.type, False).args(tr.transition_params(run_id, state)),
                      history_insert.args(tr.history_rows([state], task_run_id=run_id)[0])[1])
                     for run_id, state in updates]
            run_args = [insert.args(row)[1] for row in rows]
            history_args = [history_insert.args(row)[1] for row in history]
        except (TypeError, ValueError) as exc:
            raise _translate(exc, insert.sql, None) from exc

        def work(dbapi: sqlite3.Connection) -> list[Update]:
            refused, changed = [], []
            for run_id, state, update_args, change_args in steps:
                if _run(dbapi, *update_args).fetchone() is None:
                    refused.append((run_id, state))
                else:
                    changed.append(change_args)
            insert_rows(_run, dbapi, insert.sql, run_args)
            insert_rows(_run, dbapi, history_insert.sql, changed + history_args)
            return refused

        return self._transaction(work)


def _raise_rejected(table: str, run_id: str, state: State, found: tuple[Any, ...] | None) -> None:
    """Why the conditional UPDATE matched no row: the Core path's explanation (its module, and
    SQLAlchemy, are loaded here, on this error path only)."""
    from . import tables as t
    from .runs import raise_rejected

    raise_rejected(getattr(t, table), run_id, state, None if found is None else _Found(found[0]))


class _Found:
    __slots__ = ("state_type",)

    def __init__(self, state_type: str | None):
        self.state_type = state_type
