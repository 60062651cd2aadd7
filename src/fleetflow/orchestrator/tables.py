"""The state store's tables, as SQLAlchemy Core (no ORM: the hot paths build plain statements).

This module describes the *current* schema. ``migrations.py`` is what creates and upgrades a
database; a test checks that a freshly migrated database has exactly these tables and columns.

Conventions:

* ids of runs, blocks, deployments and pools are UUID strings; logs and state-history rows use
  integer autoincrement ids, so ``ORDER BY id`` is insertion order.
* every timestamp column is :class:`UTCDateTime`: timezone-aware UTC datetimes in Python on both
  SQLite (stored as naive UTC text, which sorts correctly) and PostgreSQL (``timestamptz``).
* JSON columns are ``JSON`` on SQLite and ``JSONB`` on PostgreSQL.
* ``flow_runs`` and ``task_runs`` keep their current state denormalised (``state_*`` columns) so
  reading a run needs no join; ``states`` holds the full history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from .sqlite_codecs import datetime_bind as _sqlite_bind, datetime_result as _sqlite_result

UTC = dt.timezone.utc


class UTCDateTime(sa.types.TypeDecorator):
    """A datetime that is always timezone-aware UTC in Python, whatever the dialect stores.

    Naive datetimes handed in are taken to be UTC already (that is what ``datetime.utcnow()``
    users mean); aware ones are converted. SQLite gets naive UTC so string comparison orders
    correctly.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        elif value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # On SQLite, one C-speed conversion straight to/from the text SQLAlchemy's DATETIME uses
    # ("YYYY-MM-DD HH:MM:SS.ffffff") instead of two Python layers: timestamps are on the
    # engine's hot path (several per task run).
    def bind_processor(self, dialect: sa.Dialect) -> Any:
        return _sqlite_bind if dialect.name == "sqlite" else super().bind_processor(dialect)

    def result_processor(self, dialect: sa.Dialect, coltype: Any) -> Any:
        return _sqlite_result if dialect.name == "sqlite" else super().result_processor(dialect, coltype)


class JSONColumn(sa.types.TypeDecorator[Any]):
    """JSON (SQLite) / JSONB (PostgreSQL); Python ``None`` is stored as SQL NULL.

    The PostgreSQL type is chosen when a dialect asks for it, not at import: importing
    ``sqlalchemy.dialects.postgresql`` loads every PostgreSQL driver module (asyncpg, pg8000,
    psycopg...), ~50 ms that a SQLite store never needs on its way to the first task.
    """

    impl = sa.JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(sa.JSON(none_as_null=True))


def json_type() -> sa.types.TypeEngine[Any]:
    """The type of every JSON column (see :class:`JSONColumn`)."""
    return JSONColumn()


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(36), primary_key=True)


def _int_id() -> sa.Column[int]:
    # BIGINT on PostgreSQL; plain INTEGER on SQLite so the column aliases the rowid.
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True)


def _created() -> sa.Column[dt.datetime]:
    return sa.Column("created", UTCDateTime(), nullable=False)


def _state_columns() -> list[sa.Column[Any]]:
    """The denormalised current state plus the timing counters both run tables share."""
    return [
        sa.Column("state_type", sa.String(16)),
        sa.Column("state_name", sa.String(64)),
        sa.Column("state_message", sa.Text()),
        sa.Column("state_timestamp", UTCDateTime()),
        sa.Column("state_data", json_type()),
        sa.Column("start_time", UTCDateTime()),
        sa.Column("end_time", UTCDateTime()),
        sa.Column("run_count", sa.Integer(), nullable=False, server_default="0"),
    ]


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", UTCDateTime(), nullable=False),
)

flow_runs = sa.Table(
    "flow_runs",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("flow_name", sa.String(200), nullable=False),
    *_state_columns(),
    sa.Column("parameters", json_type(), nullable=False),
    sa.Column("tags", json_type(), nullable=False),
    # Soft links (no foreign keys): deleting a deployment or a parent keeps the history of runs.
    sa.Column("parent_task_run_id", sa.String(36)),
    sa.Column("parent_flow_run_id", sa.String(36)),
    sa.Column("deployment_id", sa.String(36)),
    sa.Column("work_pool_name", sa.String(200)),
    sa.Column("idempotency_key", sa.String(500)),
    sa.Column("infra_overrides", json_type(), nullable=False),
    sa.Column("infrastructure_pid", sa.String(500)),
    sa.Column("infrastructure", json_type(), nullable=False),
    sa.Column("worker_name", sa.String(200)),
    sa.Column("expected_start_time", UTCDateTime()),
    _created(),
    # Added by the "launch attempts and run leases" migration: each launch attempt's number and
    # token (recorded before the infrastructure starts), and who executes the run and until when.
    sa.Column("launch_attempt", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("launch_token", sa.String(64)),
    sa.Column("lease_owner", sa.String(500)),
    sa.Column("lease_expires", UTCDateTime()),
    sa.UniqueConstraint("deployment_id", "idempotency_key"),
    # Workers' claim query: SCHEDULED runs of one pool, due first.
    sa.Index(None, "work_pool_name", "state_type", "expected_start_time"),
    sa.Index(None, "parent_flow_run_id"),
    sa.Index(None, "parent_task_run_id"),
    sa.Index(None, "deployment_id"),
    sa.Index(None, "created"),
    sa.Index(None, "lease_expires"),  # sweeps of expired leases
)

task_runs = sa.Table(
    "task_runs",
    metadata,
    _id(),
    sa.Column("flow_run_id", sa.String(36), sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("task_key", sa.String(500), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("dynamic_key", sa.String(200), nullable=False),
    sa.Column("cache_key", sa.String(500)),
    *_state_columns(),
    _created(),
    sa.Index(None, "flow_run_id"),
)

states = sa.Table(
    "states",
    metadata,
    _int_id(),
    # Exactly one of the two run ids is set: a row is either a flow run's or a task run's history.
    sa.Column("flow_run_id", sa.String(36), sa.ForeignKey("flow_runs.id", ondelete="CASCADE")),
    sa.Column("task_run_id", sa.String(36), sa.ForeignKey("task_runs.id", ondelete="CASCADE")),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("message", sa.Text()),
    sa.Column("timestamp", UTCDateTime(), nullable=False),
    sa.Column("data", json_type()),
    # Partial indexes: each history row is in exactly one of them, so an insert on the task
    # hot path touches one index, not two. Their WHERE is set for the dialect creating them
    # (see _partial_history_indexes).
    *[sa.Index(None, column) for column in ("flow_run_id", "task_run_id")],
)


@sa.event.listens_for(states, "before_create")
def _partial_history_indexes(table: sa.Table, connection: sa.Connection, **_: Any) -> None:
    """``WHERE <column> IS NOT NULL`` on the history indexes, in the creating dialect's terms.

    Written as ``sqlite_where=``/``postgresql_where=`` on the Index, the keyword check would
    import both dialects (every PostgreSQL driver module, ~50 ms) in every process at import;
    set here, only the dialect in use is touched.
    """
    for index in table.indexes:
        [column] = index.columns
        index.dialect_kwargs[f"{connection.dialect.name}_where"] = sa.text(f"{column.name} IS NOT NULL")

logs = sa.Table(
    "logs",
    metadata,
    _int_id(),
    # No foreign keys: log shipping must never fail because of ordering between processes.
    sa.Column("flow_run_id", sa.String(36)),
    sa.Column("task_run_id", sa.String(36)),
    sa.Column("level", sa.Integer(), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("timestamp", UTCDateTime(), nullable=False),
    sa.Index(None, "flow_run_id", "id"),
    sa.Index(None, "task_run_id", "id"),
)

task_cache = sa.Table(
    "task_cache",
    metadata,
    sa.Column("cache_key", sa.String(500), primary_key=True),
    sa.Column("result", json_type(), nullable=False),
    sa.Column("expiration", UTCDateTime()),
    _created(),
)

block_documents = sa.Table(
    "block_documents",
    metadata,
    _id(),
    sa.Column("block_type", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("schema_version", sa.Integer(), nullable=False),
    sa.Column("data", json_type(), nullable=False),
    _created(),
    sa.Column("updated", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("block_type", "name"),
)

deployments = sa.Table(
    "deployments",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("flow_name", sa.String(200), nullable=False),
    sa.Column("entrypoint", sa.String(1000), nullable=False),
    sa.Column("path", sa.String(1000)),
    sa.Column("storage_block", sa.String(500)),
    sa.Column("bundle_digest", sa.String(128)),
    sa.Column("infrastructure_block", sa.String(500)),
    sa.Column("infrastructure", json_type(), nullable=False),
    sa.Column("infra_overrides", json_type(), nullable=False),
    sa.Column("parameters", json_type(), nullable=False),
    sa.Column("parameter_schema", json_type(), nullable=False),
    sa.Column("work_pool_name", sa.String(200)),
    sa.Column("tags", json_type(), nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("version", sa.String(200)),
    sa.Column("schedule", json_type()),
    _created(),
    sa.Column("updated", UTCDateTime(), nullable=False),
    # Added with launch attempts: relaunches after infrastructure failures.
    sa.Column("infra_retries", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("infra_retry_delay_seconds", sa.Float(), nullable=False, server_default="0"),
    sa.Column("infra_retry_on", json_type()),
    sa.UniqueConstraint("flow_name", "name"),
    sa.Index(None, "work_pool_name"),
)

work_pools = sa.Table(
    "work_pools",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(50), nullable=False),
    sa.Column("infrastructure_block", sa.String(500)),
    sa.Column("description", sa.Text()),
    sa.Column("concurrency_limit", sa.Integer()),
    _created(),
    sa.Column("last_polled", UTCDateTime()),  # added in migration 2
    sa.Column("is_paused", sa.Boolean(), nullable=False, server_default=sa.false()),  # added by "work pool pause"
    sa.UniqueConstraint("name"),
)

# Added in migration 2.
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("work_pool_name", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("hostname", sa.String(500)),
    sa.Column("pid", sa.Integer()),
    sa.Column("last_heartbeat", UTCDateTime(), nullable=False),
    # Added with run leases: the random id of the worker process holding the name.
    sa.Column("instance_id", sa.String(64)),
)

# Added by the "artifacts, variables and tag concurrency limits" migration (Prefect 2 parity).
artifacts = sa.Table(
    "artifacts",
    metadata,
    _id(),
    sa.Column("key", sa.String(200)),  # optional; keyed artifacts keep a history per key
    sa.Column("type", sa.String(50), nullable=False),  # markdown | table | link
    sa.Column("description", sa.Text()),
    sa.Column("data", json_type()),
    sa.Column("flow_run_id", sa.String(36)),
    sa.Column("task_run_id", sa.String(36)),
    _created(),
    sa.Index(None, "flow_run_id"),
    sa.Index(None, "key", "created"),
)

variables = sa.Table(
    "variables",
    metadata,
    _id(),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("tags", json_type(), nullable=False),
    _created(),
    sa.Column("updated", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("name"),
)

concurrency_limits = sa.Table(
    "concurrency_limits",
    metadata,
    sa.Column("tag", sa.String(200), primary_key=True),
    sa.Column("concurrency_limit", sa.Integer(), nullable=False),
    _created(),
)

# One row per running task run holding a slot of a limited tag.
concurrency_slots = sa.Table(
    "concurrency_slots",
    metadata,
    sa.Column("tag", sa.String(200), primary_key=True),
    sa.Column("task_run_id", sa.String(36), primary_key=True),
    sa.Column("acquired", UTCDateTime(), nullable=False),
)

# Work queues inside pools (Prefect 2 agents): a deployment's queue is kept beside it (no
# change to the deployments table); its runs are in that queue, else in 'default'.
work_queues = sa.Table(
    "work_queues",
    metadata,
    sa.Column("work_pool_name", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("priority", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("concurrency_limit", sa.Integer()),
    sa.Column("is_paused", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("description", sa.Text()),
    _created(),
)

deployment_work_queues = sa.Table(
    "deployment_work_queues",
    metadata,
    sa.Column("deployment_id", sa.String(36), primary_key=True),
    sa.Column("work_queue_name", sa.String(200), nullable=False),
)


# ---- the server's auth and bookkeeping (added by the "api keys" migration) ----------------
api_keys = sa.Table(
    "api_keys",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    # SHA-256 of the 256-bit random key: a key is found by its hash, never stored in clear.
    sa.Column("key_hash", sa.String(64), nullable=False),
    _created(),
    sa.Column("expires", UTCDateTime()),
    sa.Column("last_used", UTCDateTime()),
    sa.Column("revoked", UTCDateTime()),
    sa.UniqueConstraint("name"),
    sa.UniqueConstraint("key_hash"),
)

run_tokens = sa.Table(
    "run_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("flow_run_id", sa.String(36), nullable=False),
    _created(),
    sa.Index(None, "flow_run_id"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    _int_id(),
    sa.Column("timestamp", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(250), nullable=False),
    sa.Column("action", sa.String(200), nullable=False),
    sa.Column("target", sa.String(500)),
    sa.Column("status", sa.Integer()),
)

# Client-generated request ids of mutating requests: a retried request returns the response
# recorded the first time instead of being applied twice.
api_requests = sa.Table(
    "api_requests",
    metadata,
    sa.Column("request_id", sa.String(100), primary_key=True),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Column("response", json_type()),
    _created(),
    sa.Index(None, "created"),
)

# Added by the "flow run usage" migration: what a run used (its usage record, JSON), written
# by its runner; deployment_id and created are copied from the run for per-deployment windows.
flow_run_usage = sa.Table(
    "flow_run_usage",
    metadata,
    sa.Column("flow_run_id", sa.String(36), sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("deployment_id", sa.String(36)),
    sa.Column("usage", json_type(), nullable=False),
    _created(),
    sa.Index(None, "deployment_id", "created"),
)

# Added by the "durable request ledger" migration: the response of each mutating API request,
# by a hash of (the caller's credentials, its client request id), so a retry is answered from
# here instead of being applied again, across server restarts too (server/api/ledger.py).
request_ledger = sa.Table(
    "request_ledger",
    metadata,
    sa.Column("request_key", sa.String(64), primary_key=True),
    sa.Column("key_name", sa.String(200)),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Column("response", json_type()),
    sa.Column("response_digest", sa.String(64), nullable=False),
    _created(),
    sa.Index(None, "created"),
)

# Indexes for the server's lists (created in the same migration with CREATE INDEX IF NOT
# EXISTS; kept out of the flow_runs Table so version 1 stays frozen): the first page of
# runs in a state, newest first, and per-pool lists.
FLOW_RUN_LIST_INDEXES = {
    "ix_flow_runs_state_type_created_id": ("state_type", "created", "id"),
    "ix_flow_runs_flow_name_created_id": ("flow_name", "created", "id"),
    "ix_flow_runs_work_pool_name_created_id": ("work_pool_name", "created", "id"),
}

# Added by the "web UI list indexes" migration (not declared on the table, like the ones above).
UI_LIST_INDEXES = {
    "ix_flow_runs_deployment_id_created_id": ("deployment_id", "created", "id"),
}
