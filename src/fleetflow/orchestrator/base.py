"""What every area of the Orchestrator shares: the engine, transactions and the dialect hooks.

The area mixins (:mod:`.runs`, :mod:`.catalog`) only use what is defined here, and the
dialect subclasses in :mod:`.service` only override the hooks here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

import sqlalchemy as sa

from .migrations import WRITE_OPTION


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())


class StoreBase:
    """Engine ownership and transaction helpers.

    * :meth:`_write` -- one write transaction. On SQLite it begins with ``BEGIN IMMEDIATE``
      (takes the write lock up front), so concurrent writers queue on ``busy_timeout`` instead
      of failing with "database is locked" when a read lock cannot be upgraded.
    * :meth:`_read` -- a connection for reads (autocommit statements on SQLite).

    Each call checks a connection out of the engine's pool, so one instance is safe to share
    between threads.
    """

    dialect_name: ClassVar[str] = ""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    def _write(self) -> Any:
        """``with self._write() as conn:`` -- commit on success, roll back on error."""
        return self._writer.begin()

    def _read(self) -> sa.Connection:
        """``with self._read() as conn:``."""
        return self.engine.connect()

    # ---- dialect hooks ----------------------------------------------------------------------
    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT construct (both offer ``on_conflict_do_update/nothing``)."""
        raise NotImplementedError

    def _lock_claim_candidates(self, select: sa.Select[Any]) -> sa.Select[Any]:
        """Add row locking to the claim query where the dialect has it (PostgreSQL)."""
        return select

    def dispose(self) -> None:
        """Close every pooled connection. The instance can still be used afterwards (it
        reconnects), but callers should drop it."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.engine.url.render_as_string(hide_password=True)!r})"
