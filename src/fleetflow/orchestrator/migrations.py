"""Creating and upgrading the store's schema: an ordered list of numbered migrations.

Each applied migration is a row in ``schema_migrations``. :func:`migrate` applies the pending
ones in one transaction while holding a lock, so two processes starting at once (a worker and
a flow, two workers, a test run under xdist) never both apply one:

* PostgreSQL: ``pg_advisory_xact_lock`` (released at commit; DDL is transactional).
* SQLite: the transaction is begun with ``BEGIN IMMEDIATE`` (the write lock), which requires an
  engine from :meth:`fleetflow.orchestrator.Orchestrator.create` (it installs that hook).

A migration is frozen once released: it describes the schema *as it was* at its version. Tables
unchanged since version 1 are created from :mod:`.tables`; when a later migration alters one,
freeze its old shape here, as done for ``work_pools`` (``_V1_WORK_POOLS``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from typing import Callable, Iterator

import sqlalchemy as sa

from ..exceptions import ConfigurationError
from . import tables as t

# Execution option that makes the SQLite engine begin transactions with BEGIN IMMEDIATE.
WRITE_OPTION = "fleetflow_write"
_PG_LOCK_KEY = 0x46_4C_45_45_54  # "FLEET": arbitrary, constant advisory-lock key


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sa.Connection], None]


# work_pools as created by version 1 (version 2 added ``last_polled``).
_v1_metadata = sa.MetaData(naming_convention=t.metadata.naming_convention)
_V1_WORK_POOLS = sa.Table(
    "work_pools",
    _v1_metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(50), nullable=False),
    sa.Column("infrastructure_block", sa.String(500)),
    sa.Column("description", sa.Text()),
    sa.Column("concurrency_limit", sa.Integer()),
    sa.Column("created", t.UTCDateTime(), nullable=False),
    sa.UniqueConstraint("name"),
)


def _v1_base_schema(conn: sa.Connection) -> None:
    base = [t.flow_runs, t.task_runs, t.states, t.logs, t.task_cache, t.block_documents, t.deployments]
    t.metadata.create_all(conn, tables=base, checkfirst=False)
    _V1_WORK_POOLS.create(conn, checkfirst=False)


def _v2_workers(conn: sa.Connection) -> None:
    column_type = t.UTCDateTime().compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE work_pools ADD COLUMN last_polled {column_type}")
    t.workers.create(conn, checkfirst=False)


def _api_keys_and_list_indexes(conn: sa.Connection) -> None:
    for table in (t.api_keys, t.run_tokens, t.audit_log, t.api_requests):
        table.create(conn, checkfirst=False)
    for name, columns in t.FLOW_RUN_LIST_INDEXES.items():
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON flow_runs ({', '.join(columns)})")


def _compat_tables(conn: sa.Connection) -> None:
    """Artifacts, variables and tag concurrency limits (new tables only)."""
    new = [t.artifacts, t.variables, t.concurrency_limits, t.concurrency_slots]
    t.metadata.create_all(conn, tables=new, checkfirst=False)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "base schema", _v1_base_schema),
    Migration(2, "workers table and work_pools.last_polled", _v2_workers),
    Migration(3, "artifacts, variables and tag concurrency limits", _compat_tables),
    Migration(4, "api keys, run tokens, audit log, request ids, flow run list indexes", _api_keys_and_list_indexes),
)
LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: sa.Connection) -> int:
    """The schema version of the database (0 when it is empty)."""
    if not sa.inspect(conn).has_table(t.schema_migrations.name):
        return 0
    return conn.execute(sa.select(sa.func.max(t.schema_migrations.c.version))).scalar() or 0


def migrate(engine: sa.Engine, *, target: int | None = None) -> int:
    """Bring the schema up to ``target`` (default: the latest) and return the version reached.

    Cheap when nothing is pending (one unlocked read), so every process can call it at start.
    Raises ConfigurationError if the database is newer than this code.
    """
    target = LATEST_VERSION if target is None else target
    with engine.connect() as conn:
        version = current_version(conn)
    _check_not_newer(version)
    if version >= target:
        return version
    with _locked_transaction(engine) as conn:
        version = current_version(conn)  # another process may have migrated meanwhile
        if version == 0:
            t.schema_migrations.create(conn, checkfirst=False)
        for migration in MIGRATIONS:
            if version < migration.version <= target:
                migration.apply(conn)
                conn.execute(
                    t.schema_migrations.insert(),
                    {"version": migration.version, "name": migration.name, "applied_at": dt.datetime.now(t.UTC)},
                )
                version = migration.version
    return version


def _check_not_newer(version: int) -> None:
    if version > LATEST_VERSION:
        raise ConfigurationError(
            f"The state store has schema version {version}, newer than this fleetflow understands "
            f"({LATEST_VERSION}). Upgrade fleetflow, or point FLEETFLOW_DATABASE_URL at another store.",
            field="database_url",
        )


@contextlib.contextmanager
def _locked_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction holding the migration lock (see the module docstring)."""
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        yield conn
