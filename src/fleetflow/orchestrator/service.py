"""The embedded Orchestrator: one class with the SQL both dialects share, and a subclass per
dialect that overrides a few hooks (engine creation and pragmas, row locking), DBOS-style.

    store = Orchestrator.create()                      # settings' URL (SQLite under FLEETFLOW_HOME)
    store = Orchestrator.create("postgresql+psycopg://user@host/db")

``create`` migrates the schema (cheap when current) before returning.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy import event

from ..exceptions import ConfigurationError
from ..settings import get_settings
from . import migrations
from . import tables as t
from .base import StoreBase
from .browse import BrowseMixin
from .catalog import BlocksMixin, CacheMixin, DeploymentsMixin, LogsMixin, PoolsMixin
from .deployment_runs import DeploymentRunsMixin
from .extras import ArtifactsMixin, ConcurrencyMixin, VariablesMixin
from .keys import KeysMixin
from .ledger import LedgerMixin
from .leases import LeasesMixin
from .queues import WorkQueuesMixin
from .runs import FlowRunsMixin, TaskRunsMixin
from .usage import UsageMixin
from .jsoncodec import _json_default, json_dumps  # noqa: F401  (json_dumps: public path)
from .sqlite_fast import SQLiteFastPath
from .sqlite_files import (  # noqa: F401  (public paths of the first two)
    SQLITE_BUSY_TIMEOUT_MS, private_sqlite_files, process_write_lock as _process_write_lock,
    sqlite_on_connect as _sqlite_on_connect,
)



class Orchestrator(
    FlowRunsMixin, TaskRunsMixin, DeploymentRunsMixin, LeasesMixin, LogsMixin, CacheMixin, BlocksMixin, DeploymentsMixin,
    PoolsMixin, ArtifactsMixin, VariablesMixin, ConcurrencyMixin, WorkQueuesMixin, KeysMixin, LedgerMixin, UsageMixin, BrowseMixin,
    StoreBase,
):
    """The state store. :class:`fleetflow.client.embedded.EmbeddedClient` exposes it as the
    :class:`~fleetflow.client.protocol.OrchestratorAPI`; the server calls it directly.

    Build it with :meth:`create`, which picks the dialect subclass from the URL. Instances are
    thread-safe (every method checks out its own pooled connection) and should be shared.
    """

    @classmethod
    def create(cls, url: str | None = None, *, migrate: bool = True) -> Orchestrator:
        """An Orchestrator on ``url`` (default: the settings' store), migrated unless told not to."""
        url = url or get_settings().resolved_database_url()
        parsed = sa.make_url(url)
        backend = parsed.get_backend_name()
        subclass = {"sqlite": SQLiteOrchestrator, "postgresql": PostgresOrchestrator, "postgres": PostgresOrchestrator}.get(backend)
        if subclass is None:
            raise ConfigurationError(
                f"Unsupported state store URL {parsed.render_as_string(hide_password=True)!r}: use "
                "sqlite:///path/to/fleetflow.db or postgresql+psycopg://user:password@host/db.",
                field="database_url",
            )
        store = subclass(subclass.create_engine(parsed))
        if migrate:
            try:
                migrations.migrate(store.engine)
            except sa.exc.OperationalError as exc:  # cannot connect / open the file
                store.dispose()
                raise ConfigurationError(
                    f"Cannot open the state store {parsed.render_as_string(hide_password=True)!r}: {exc.orig}. "
                    "Check FLEETFLOW_DATABASE_URL (or FLEETFLOW_HOME for the default SQLite file).",
                    field="database_url",
                ) from exc
        return store

    @classmethod
    def create_engine(cls, url: sa.URL) -> sa.Engine:
        """The dialect's engine, with its connection settings (hook)."""
        raise NotImplementedError


class SQLiteOrchestrator(SQLiteFastPath, Orchestrator):
    """SQLite: WAL (readers never block the writer), ``synchronous=NORMAL`` (fast commits
    that survive a process crash; only an OS crash or power cut can lose the latest ones),
    foreign keys on, a long ``busy_timeout``, and write transactions begun with ``BEGIN IMMEDIATE``.

    Why IMMEDIATE: a deferred transaction that reads and then writes must upgrade its lock; if
    another process wrote meanwhile, SQLite fails at once with "database is locked" instead of
    waiting. Taking the write lock at BEGIN makes writers queue on ``busy_timeout`` instead.
    pysqlite's own transaction handling is switched off (``isolation_level = None``) and BEGIN
    is emitted by us -- SQLAlchemy's documented recipe for pysqlite.
    Reads run as autocommit statements (no BEGIN at all), which in WAL mode never wait.

    The engine's per-task calls (``create_task_run``, ``set_task_run_state``) and the task
    cache skip SQLAlchemy's per-statement machinery and run the same compiled SQL on a DBAPI
    connection: see :mod:`.sqlite_fast` for why and what it guarantees.

    A process's embedded client does not start here on a current SQLite file: it takes the
    plain SQLite path (:mod:`.lite`, no SQLAlchemy), which creates this store only for what it
    does not cover.
    """

    dialect_name = "sqlite"

    @classmethod
    def create_engine(cls, url: sa.URL) -> sa.Engine:
        database = url.database or ""
        if database in ("", ":memory:") or "mode=memory" in str(url):
            raise ConfigurationError(
                "An in-memory SQLite store cannot be shared between threads and processes; use a file "
                "(sqlite:////tmp/x.db) or fleetflow.testing.temporary_store().",
                field="database_url",
            )
        if sqlite3.sqlite_version_info < (3, 35):
            raise ConfigurationError(
                f"SQLite {sqlite3.sqlite_version} is too old for the fleetflow store (needs 3.35+ for RETURNING); "
                "use a Python built with a newer SQLite, or PostgreSQL.",
                field="database_url",
            )
        if not database.startswith("file:"):
            url = url.set(database=str(Path(database).expanduser()))  # SQLite does not expand "~"
            folder = Path(url.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(
                    f"Cannot create the folder {str(folder)!r} for the SQLite store: {exc}. "
                    "Check FLEETFLOW_HOME or FLEETFLOW_DATABASE_URL.",
                    field="database_url",
                ) from exc
            private_sqlite_files(Path(url.database))
        engine = sa.create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            poolclass=sa.pool.QueuePool,
            pool_size=8,
            max_overflow=64,
            json_serializer=json_dumps,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        if url.database and not url.database.startswith("file:"):
            database = Path(url.database)
            event.listen(engine, "connect", lambda *_: private_sqlite_files(database, create=False))
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def __init__(self, engine: sa.Engine):
        super().__init__(engine)
        self._write_lock = _process_write_lock(engine.url.database or "")
        self._init_fast_path()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """Threads of this process queue on a lock rather than on SQLite's busy handler, which
        polls with sleeps of up to 100 ms (measured: p99 650 ms with 16 threads without it).
        Other processes still wait on ``busy_timeout``."""
        with self._write_lock:
            self._flush_locked()  # buffered task-run records first (group commit, rule 2)
            with self._writer.begin() as conn:
                yield conn

    def _commit_lock(self) -> Any:
        return self._write_lock

    def dispose(self) -> None:
        self._close_group()
        self._close_fast_path()
        Orchestrator.dispose(self)

    def _insert(self, table: sa.Table) -> Any:
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)


def _sqlite_on_begin(conn: sa.Connection) -> None:
    if conn.get_execution_options().get(migrations.WRITE_OPTION):
        # Straight to the driver: this runs once per write call, on the engine's hot path.
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE")


class PostgresOrchestrator(Orchestrator):
    """PostgreSQL through psycopg 3: READ COMMITTED, ``pool_pre_ping`` (survives server
    restarts and idle-connection reaping), and ``FOR UPDATE SKIP LOCKED`` on claims."""

    dialect_name = "postgresql"

    @classmethod
    def create_engine(cls, url: sa.URL) -> sa.Engine:
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        try:
            if url.get_driver_name() == "psycopg":
                import psycopg  # noqa: F401 - only to fail early with the fix in the message
        except ImportError as exc:
            raise ConfigurationError(
                "A PostgreSQL store needs psycopg: pip install 'fleetflow[postgres]'.", field="database_url"
            ) from exc
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=20, json_serializer=json_dumps)

    def _insert(self, table: sa.Table) -> Any:
        # Imported here: only a PostgreSQL store loads the PostgreSQL dialect (see tables.JSONColumn).
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)

    def _lock_claim_candidates(self, select: sa.Select[Any]) -> sa.Select[Any]:
        # of=flow_runs: the work-queue outer joins cannot be locked (and need not be).
        return select.with_for_update(skip_locked=True, of=t.flow_runs)
