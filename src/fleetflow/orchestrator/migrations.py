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


# flow_runs as created by version 1 (the launch-attempt/lease migration added four columns).
_V1_FLOW_RUNS = sa.Table(
    "flow_runs",
    _v1_metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("flow_name", sa.String(200), nullable=False),
    sa.Column("state_type", sa.String(16)),
    sa.Column("state_name", sa.String(64)),
    sa.Column("state_message", sa.Text()),
    sa.Column("state_timestamp", t.UTCDateTime()),
    sa.Column("state_data", t.json_type()),
    sa.Column("start_time", t.UTCDateTime()),
    sa.Column("end_time", t.UTCDateTime()),
    sa.Column("run_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("parameters", t.json_type(), nullable=False),
    sa.Column("tags", t.json_type(), nullable=False),
    sa.Column("parent_task_run_id", sa.String(36)),
    sa.Column("parent_flow_run_id", sa.String(36)),
    sa.Column("deployment_id", sa.String(36)),
    sa.Column("work_pool_name", sa.String(200)),
    sa.Column("idempotency_key", sa.String(500)),
    sa.Column("infra_overrides", t.json_type(), nullable=False),
    sa.Column("infrastructure_pid", sa.String(500)),
    sa.Column("infrastructure", t.json_type(), nullable=False),
    sa.Column("worker_name", sa.String(200)),
    sa.Column("expected_start_time", t.UTCDateTime()),
    sa.Column("created", t.UTCDateTime(), nullable=False),
    sa.UniqueConstraint("deployment_id", "idempotency_key"),
    sa.Index(None, "work_pool_name", "state_type", "expected_start_time"),
    sa.Index(None, "parent_flow_run_id"),
    sa.Index(None, "parent_task_run_id"),
    sa.Index(None, "deployment_id"),
    sa.Index(None, "created"),
)

# deployments as created by version 1 (the launch-attempt migration added the retry policy).
_V1_DEPLOYMENTS = sa.Table(
    "deployments",
    _v1_metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("flow_name", sa.String(200), nullable=False),
    sa.Column("entrypoint", sa.String(1000), nullable=False),
    sa.Column("path", sa.String(1000)),
    sa.Column("storage_block", sa.String(500)),
    sa.Column("bundle_digest", sa.String(128)),
    sa.Column("infrastructure_block", sa.String(500)),
    sa.Column("infrastructure", t.json_type(), nullable=False),
    sa.Column("infra_overrides", t.json_type(), nullable=False),
    sa.Column("parameters", t.json_type(), nullable=False),
    sa.Column("parameter_schema", t.json_type(), nullable=False),
    sa.Column("work_pool_name", sa.String(200)),
    sa.Column("tags", t.json_type(), nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("version", sa.String(200)),
    sa.Column("schedule", t.json_type()),
    sa.Column("created", t.UTCDateTime(), nullable=False),
    sa.Column("updated", t.UTCDateTime(), nullable=False),
    sa.UniqueConstraint("flow_name", "name"),
    sa.Index(None, "work_pool_name"),
)

# workers as created by version 2 (the lease migration added ``instance_id``).
_V2_WORKERS = sa.Table(
    "workers",
    _v1_metadata,
    sa.Column("work_pool_name", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("hostname", sa.String(500)),
    sa.Column("pid", sa.Integer()),
    sa.Column("last_heartbeat", t.UTCDateTime(), nullable=False),
)


def _v1_base_schema(conn: sa.Connection) -> None:
    _V1_FLOW_RUNS.create(conn, checkfirst=False)
    _V1_DEPLOYMENTS.create(conn, checkfirst=False)
    base = [t.task_runs, t.states, t.logs, t.task_cache, t.block_documents]
    t.metadata.create_all(conn, tables=base, checkfirst=False)
    _V1_WORK_POOLS.create(conn, checkfirst=False)


def _v2_workers(conn: sa.Connection) -> None:
    column_type = t.UTCDateTime().compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE work_pools ADD COLUMN last_polled {column_type}")
    _V2_WORKERS.create(conn, checkfirst=False)


def _v3_launch_attempts_and_leases(conn: sa.Connection) -> None:
    """Self-contained: adds columns and one index, touches no other migration's objects."""
    ts = t.UTCDateTime().compile(dialect=conn.dialect)
    for column in ("launch_attempt INTEGER NOT NULL DEFAULT 0", "launch_token VARCHAR(64)",
                   "lease_owner VARCHAR(500)", f"lease_expires {ts}"):
        conn.exec_driver_sql(f"ALTER TABLE flow_runs ADD COLUMN {column}")
    conn.exec_driver_sql("CREATE INDEX ix_flow_runs_lease_expires ON flow_runs (lease_expires)")
    conn.exec_driver_sql("ALTER TABLE workers ADD COLUMN instance_id VARCHAR(64)")
    json = t.json_type().compile(dialect=conn.dialect)
    for column in ("infra_retries INTEGER NOT NULL DEFAULT 0", "infra_retry_delay_seconds FLOAT NOT NULL DEFAULT 0",
                   f"infra_retry_on {json}"):
        conn.exec_driver_sql(f"ALTER TABLE deployments ADD COLUMN {column}")


# api_requests as created by version 5 (never used: the request ledger replaced it; dropped by
# the "drop the unused api_requests table" migration).
_V5_API_REQUESTS = sa.Table(
    "api_requests",
    _v1_metadata,
    sa.Column("request_id", sa.String(100), primary_key=True),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Column("response", t.json_type()),
    sa.Column("created", t.UTCDateTime(), nullable=False),
    sa.Index(None, "created"),
)


def _api_keys_and_list_indexes(conn: sa.Connection) -> None:
    for table in (t.api_keys, t.run_tokens, t.audit_log, _V5_API_REQUESTS):
        table.create(conn, checkfirst=False)
    for name, columns in t.FLOW_RUN_LIST_INDEXES.items():
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON flow_runs ({', '.join(columns)})")


def _compat_tables(conn: sa.Connection) -> None:
    """Artifacts, variables, tag concurrency limits and work queues (new tables only)."""
    new = [t.artifacts, t.variables, t.concurrency_limits, t.concurrency_slots, t.work_queues, t.deployment_work_queues]
    t.metadata.create_all(conn, tables=new, checkfirst=False)


def _flow_run_usage(conn: sa.Connection) -> None:
    """The usage record of each flow run (a new table only)."""
    t.flow_run_usage.create(conn, checkfirst=False)


def _ui_list_indexes(conn: sa.Connection) -> None:
    """The web UI's lists: a deployment's last runs, newest first (Deployments page)."""
    for name, columns in t.UI_LIST_INDEXES.items():
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON flow_runs ({', '.join(columns)})")


def _work_pool_pause(conn: sa.Connection) -> None:
    """A paused flag per work pool (one new column): the claim skips a paused pool's runs."""
    false = sa.false().compile(dialect=conn.dialect)  # 0 on SQLite, false on PostgreSQL
    conn.exec_driver_sql(f"ALTER TABLE work_pools ADD COLUMN is_paused BOOLEAN NOT NULL DEFAULT {false}")


def _request_ledger(conn: sa.Connection) -> None:
    """The durable request ledger (a new table only)."""
    t.request_ledger.create(conn, checkfirst=False)


def _drop_api_requests(conn: sa.Connection) -> None:
    """The request-id table of version 5 was never read or written (the request ledger does
    its job): dropped, with its index."""
    _V5_API_REQUESTS.drop(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "base schema", _v1_base_schema),
    Migration(2, "workers table and work_pools.last_polled", _v2_workers),
    Migration(3, "launch attempts, run leases and infrastructure retries", _v3_launch_attempts_and_leases),
    Migration(4, "artifacts, variables, tag concurrency limits and work queues", _compat_tables),
    Migration(5, "api keys, run tokens, audit log, request ids, flow run list indexes", _api_keys_and_list_indexes),
    Migration(6, "flow run usage records", _flow_run_usage),
    Migration(7, "web UI list indexes", _ui_list_indexes),
    Migration(8, "work pool pause", _work_pool_pause),
    Migration(9, "durable request ledger", _request_ledger),
    Migration(10, "drop the unused api_requests table", _drop_api_requests),
)
LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: sa.Connection) -> int:
    """The schema version of the database (0 when it is empty).

    Every process calls this at start (:func:`migrate`), so it is two plain statements: no
    reflection (SQLAlchemy's Inspector) and no SQL compilation."""
    if not _has_migrations_table(conn):
        return 0
    return conn.exec_driver_sql(f"SELECT max(version) FROM {t.schema_migrations.name}").scalar() or 0


def _has_migrations_table(conn: sa.Connection) -> bool:
    if conn.dialect.name == "sqlite":
        found = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (t.schema_migrations.name,)
        ).first()
        return found is not None
    return sa.inspect(conn).has_table(t.schema_migrations.name)


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
