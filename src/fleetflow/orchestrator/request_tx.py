"""One API request's store writes in one transaction, committed with its ledger row.

Why
---
The server answers a retried request (same ``X-Request-Id``) from the request ledger
(:mod:`.ledger`), so a request must never be applied without its ledger row being recorded,
nor the other way round. Writing the row after the request's own commits left a window: a
server killed between the two applied the request again on the client's retry. Here the
request's writes and its ledger row commit as one transaction, on SQLite (the Core path and
the fast path alike) and on PostgreSQL: a kill before the COMMIT leaves nothing (the retry
applies it once), a kill after it leaves both (the retry is replayed).

How
---
The server sets :data:`ACTIVE` to a :class:`RequestTransaction` for a request that carries a
request id; while it is set, for the store it was made for:

* every write (``StoreBase._write``, ``SQLiteOrchestrator._write``, the SQLite fast path's
  ``_fast_write``) runs in that one transaction -- nothing is begun until the first write, and
  each store operation after the first gets its own SAVEPOINT, so an operation that fails
  (a refused batch item) undoes only itself and the request goes on;
* reads after the first write use the same connection (read-your-writes);
* :func:`after_commit` side effects (waking long-polls) run after the COMMIT, never before.

The server then records the ledger row on :meth:`RequestTransaction.connection` and calls
:meth:`~RequestTransaction.commit`, or :meth:`~RequestTransaction.rollback` for a 5xx.

Rules a caller must keep
------------------------
* On SQLite the process's per-file write lock is held from the first write to the commit, and
  released by whichever thread commits (``threading.Lock`` allows that). So nothing between a
  request's first write and its commit may wait for a thread-pool slot that a writer blocked on
  that lock could be holding: the server commits on its own thread limiter.
* A long-poll that writes (claiming runs) calls :func:`checkpoint` after an attempt that found
  nothing, so no lock or connection is held while it waits; only the attempt that answers is
  committed with the ledger row (the empty attempts changed nothing the answer depends on).
* Writes that are not the request's own effect (authentication's ``last_used``) run inside
  :func:`outside_request`.
* The server's store does not buffer task runs (group commit is the embedded client's): a
  buffered record would escape the transaction. :meth:`RequestTransaction.begin` commits any
  buffer first, like every immediate write.
"""

from __future__ import annotations

import contextlib
import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

if TYPE_CHECKING:  # the store's package imports no SQLAlchemy up front (start-up)
    import sqlalchemy as sa

_T = TypeVar("_T")


class RequestTransaction:
    """The lazily begun transaction of one request on ``store`` (see the module docstring).

    Used by one thread at a time (the route's, then the server's commit thread)."""

    def __init__(self, store: Any):
        self.store = store
        self._conn: sa.Connection | None = None
        self._lock: threading.Lock | None = None  # SQLite's write lock, while held
        self._depth = 0  # operations in progress (nested store calls)
        self._dirty = False  # an operation completed in the open transaction
        self._after: list[Callable[[], None]] = []
        self.ended = False

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def connection(self) -> sa.Connection:
        """The request's connection, beginning the transaction if it is not yet."""
        return self._conn if self._conn is not None else self.begin()

    def begin(self) -> sa.Connection:
        if self.ended:
            raise RuntimeError("this request's transaction has already ended; a write after the response is a bug")
        lock: threading.Lock | None = getattr(self.store, "_write_lock", None)  # SQLite's (service.py)
        if lock is not None:
            lock.acquire()
        try:
            if lock is not None:
                self.store._flush_locked()  # buffered task runs first (group commit, rule 2)
            else:
                self.store.flush_writes()
            conn = self.store._writer.connect()
            try:
                conn.begin()  # BEGIN IMMEDIATE on SQLite (the writer's begin event)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        self._conn, self._lock = conn, lock
        return conn

    @contextlib.contextmanager
    def operation(self) -> Iterator[sa.Connection]:
        """One store write inside the request's transaction. The request's first write needs no
        savepoint: if it fails, the transaction holds nothing else and is rolled back whole."""
        conn = self.connection()
        if self._depth == 0 and not self._dirty:
            self._depth = 1
            try:
                yield conn
            except BaseException:
                self._depth = 0
                self._end(commit=False)
                raise
            self._depth, self._dirty = 0, True
            return
        dbapi = conn.connection.driver_connection
        name = f"fleetflow_op_{self._depth}"
        dbapi.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield conn
        except BaseException:
            self._depth -= 1
            dbapi.execute(f"ROLLBACK TO SAVEPOINT {name}")
            dbapi.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self._depth -= 1
        dbapi.execute(f"RELEASE SAVEPOINT {name}")
        self._dirty = True

    def run_dbapi(self, work: Callable[[Any], _T]) -> _T:
        """``work(driver_connection)`` as one operation (the SQLite fast path's statements)."""
        with self.operation() as conn:
            return work(conn.connection.driver_connection)

    @contextlib.contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """The open transaction's connection for a read (left open: the request goes on)."""
        assert self._conn is not None
        yield self._conn

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after.append(callback)

    def commit(self) -> None:
        """Commit what the request wrote (nothing to do when it wrote nothing), then run the
        deferred side effects."""
        self._end(commit=True)
        callbacks, self._after = self._after, []
        for callback in callbacks:
            callback()

    def rollback(self) -> None:
        self._end(commit=False)
        self._after = []

    def close(self, *, commit: bool) -> None:
        """End the request: commit or roll back; no write may follow."""
        try:
            self.commit() if commit else self.rollback()
        finally:
            self.ended = True

    def _end(self, *, commit: bool) -> None:
        conn, lock = self._conn, self._lock
        self._conn, self._lock, self._dirty, self._depth = None, None, False, 0
        if conn is None:
            return
        try:
            try:
                if commit:
                    conn.commit()
                else:
                    conn.rollback()
            finally:
                conn.close()
        finally:
            if lock is not None:
                lock.release()


ACTIVE: ContextVar[RequestTransaction | None] = ContextVar("fleetflow_request_transaction", default=None)


def for_store(store: Any) -> RequestTransaction | None:
    """The request transaction writes of ``store`` go into, if any."""
    tx = ACTIVE.get()
    return tx if tx is not None and tx.store is store else None


def holding(store: Any) -> RequestTransaction | None:
    """The request transaction of ``store`` if it is open (has begun)."""
    tx = ACTIVE.get()
    return tx if tx is not None and tx.store is store and tx.is_open else None


@contextlib.contextmanager
def request_transaction(store: Any) -> Iterator[RequestTransaction]:
    """Make ``store``'s writes in this context (and the threads it hands work to, which copy
    the context) go into one new transaction; the caller commits or rolls it back."""
    tx = RequestTransaction(store)
    token = ACTIVE.set(tx)
    try:
        yield tx
    finally:
        ACTIVE.reset(token)


@contextlib.contextmanager
def outside_request() -> Iterator[None]:
    """Writes here commit on their own, not with the request (e.g. a key's ``last_used``)."""
    token = ACTIVE.set(None)
    try:
        yield
    finally:
        ACTIVE.reset(token)


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the current request's writes are committed (now, outside a request
    or before its first write; dropped if the request is rolled back)."""
    tx = ACTIVE.get()
    if tx is not None and tx.is_open:
        tx.after_commit(callback)
    else:
        callback()


def checkpoint() -> None:
    """Commit what the current request wrote so far and release its lock and connection (a
    long-poll about to wait); later writes begin a new transaction."""
    tx = ACTIVE.get()
    if tx is not None and tx.is_open:
        tx.commit()
