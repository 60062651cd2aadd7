"""What every area of the Orchestrator shares: the engine, transactions and the dialect hooks.

The area mixins (:mod:`.runs`, :mod:`.catalog`) only use what is defined here, and the
dialect subclasses in :mod:`.service` only override the hooks here.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from . import request_tx
from .group_commit import GroupCommit, Rows, Update

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger("fleetflow.store")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())


def _integrity_error() -> type[BaseException]:
    """``sqlalchemy.exc.IntegrityError``, imported when an ``except`` clause matches against it
    (only then): a store on the plain SQLite path (:mod:`.lite`) loads no SQLAlchemy otherwise,
    and raises this very class when a constraint fails."""
    from sqlalchemy.exc import IntegrityError

    return IntegrityError


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
    _group: GroupCommit | None = None

    def __init__(self, engine: sa.Engine):
        from .migrations import WRITE_OPTION

        self.engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._group_lock = threading.Lock()

    def _write(self) -> Any:
        """``with self._write() as conn:`` -- commit on success, roll back on error. Whatever
        the group commit buffered is committed first (see :mod:`.group_commit`, rule 2).
        Inside a server request with a request id, one operation of the request's transaction
        instead, committed with its ledger row (see :mod:`.request_tx`)."""
        tx = request_tx.for_store(self)
        if tx is not None:
            return tx.operation()
        if self._group is not None:
            self.flush_writes()
        return self._writer.begin()

    # ---- group commit (see .group_commit) ---------------------------------------------------
    def enable_group_commit(self, window: float, max_records: int = 1000) -> None:
        """Buffer this process's task-run records and commit them every ``window`` seconds or
        ``max_records`` records, in one transaction; ``window <= 0`` keeps one commit per write."""
        self._close_group()
        if window > 0:
            self._group = GroupCommit(self.flush_writes, window=window, max_records=max_records)

    @property
    def group_commit(self) -> GroupCommit | None:
        """The buffer, when group commit is on."""
        return self._group

    def flush_writes(self) -> None:
        """Commit the buffered task-run records now (and wait for a commit in progress)."""
        if self._group is not None and request_tx.holding(self) is None:  # a request's begin() flushed
            with self._commit_lock():
                self._flush_locked()

    def _commit_lock(self) -> Any:
        """The lock that orders buffered commits before immediate writes (a hook: SQLite uses
        its per-file write lock, which every write of the process already takes)."""
        return self._group_lock

    def _flush_locked(self) -> None:
        group = self._group
        if group is None:
            return
        batch = group.take()
        if not batch:
            return
        try:
            refused = self._commit_task_runs(batch.rows, batch.history, batch.updates)
        except _integrity_error():
            try:
                refused = self._commit_task_runs([], [], batch.updates) if batch.updates else []
            except BaseException:
                group.restore(batch)
                raise
            self._commit_one_by_one(batch.rows, batch.history)
        except BaseException:
            # e.g. the database is unreachable: keep the records for the next write, which
            # then fails too -- so a flow run never turns final over task runs not recorded.
            group.restore(batch)
            raise
        for run_id, state in refused:
            log.error("the change of task run %s to %s was not recorded: another process changed the run meanwhile",
                      run_id, state.type.value)

    def _commit_task_runs(self, rows: Rows, history: Rows, updates: Sequence[Update] = ()) -> list[Update]:
        """One group commit, in ONE transaction (commit lock held): the state changes of
        settled task runs, each through the store's conditional UPDATE, then the new task runs
        with their final columns and their history. Returns the changes the UPDATE refused.

        One transaction because a batch's records are in call order across both parts (a
        settled run completes, then the next task starts): committed apart, a kill between the
        two would leave a later task COMPLETED and an earlier one still RUNNING."""
        from . import tables as t
        from . import transitions as tr

        refused = []
        with self._writer.begin() as conn:
            for run_id, state in updates:
                update = tr.TRANSITIONS[("task_runs", state.type, False)]
                if conn.execute(update, tr.transition_params(run_id, state)).first() is None:
                    refused.append((run_id, state))
                    continue
                conn.execute(t.states.insert(), tr.history_rows([state], task_run_id=run_id))
            if rows:
                conn.execute(t.task_runs.insert(), rows)
            if history:
                conn.execute(t.states.insert(), history)
        return refused

    def _commit_one_by_one(self, rows: Rows, history: Rows) -> None:
        """A batch that broke a constraint (a flow run deleted meanwhile, a reused id): keep every
        record that can be kept, and say which could not."""
        for row in rows:
            own = [h for h in history if h["task_run_id"] == row["id"]]
            try:
                self._commit_task_runs([row], own)
            except _integrity_error() as exc:
                log.error("task run %s of flow run %s could not be recorded: %s", row["id"], row["flow_run_id"], exc.orig)

    def _close_group(self) -> None:
        group = self._group
        if group is None:
            return
        try:
            group.close()  # commits what is left, through flush_writes
        finally:
            self._group = None

    def _read(self) -> Any:
        """``with self._read() as conn:`` (after a request's first write: its own connection,
        so the request reads what it wrote)."""
        tx = request_tx.holding(self)
        if tx is not None:
            return tx.reading()
        return self.engine.connect()

    # ---- dialect hooks ----------------------------------------------------------------------
    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT construct (both offer ``on_conflict_do_update/nothing``)."""
        raise NotImplementedError

    def _lock_claim_candidates(self, select: sa.Select[Any]) -> sa.Select[Any]:
        """Add row locking to the claim query where the dialect has it (PostgreSQL)."""
        return select

    def dispose(self) -> None:
        """Commit buffered records and close every pooled connection. The instance can still
        be used afterwards (it reconnects, without group commit), but callers should drop it."""
        self._close_group()
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.engine.url.render_as_string(hide_password=True)!r})"
