"""Waking the store's long-polls (``wait_for_flow_run``, ``claim_flow_runs(wait=...)``) when
the database changes, instead of re-querying on a fixed interval.

On SQLite, ``PRAGMA data_version`` on a private connection changes whenever any other connection
-- any thread, any process -- commits to the file; reading it is a look at the WAL's shared
memory, not a query. One waiting thread of the process (the *leader*) checks it every
:data:`CHANGE_CHECK_SECONDS`; the others sleep on a condition until it sees a change. So a child
that finishes wakes its parent's ``run_deployment`` within a few milliseconds, and a new run
wakes a waiting worker's claim, for the price of one cheap check per few milliseconds per
process, and one store query per change per *kind* of wait (:class:`RunWaiters` checks every
waited-on flow run in one query, so 50 waiting threads cost one query per change, not 50, and
wakes only the threads whose runs it found final).

Other databases (PostgreSQL) have no such counter: the leader then reports a "change" every
``fallback_interval`` (the previous fixed poll), and the batching still applies.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any, Callable, Iterable

CHANGE_CHECK_SECONDS = 0.003  # between data_version checks of the leader (a shared-memory read)
FALLBACK_INTERVAL_SECONDS = 0.05  # between re-queries where changes cannot be seen (PostgreSQL)
RECHECK_SECONDS = 0.01  # least time between two "which waited-on runs are final?" queries


class ChangeFeed:
    """Counts the commits this process has noticed to one database; waits for the next one."""

    def __init__(self, sqlite_path: str | None, *, fallback_interval: float = FALLBACK_INTERVAL_SECONDS):
        self._path = sqlite_path
        self._fallback = fallback_interval
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._leader = False
        self._generation = 0  # bumped on every change seen
        self._data_version: int | None = None
        self._probe = threading.Lock()  # one thread at a time on the private connection

    @property
    def generation(self) -> int:
        """The number of changes noticed so far (read without a lock: an int)."""
        return self._generation

    def mark(self) -> int:
        """The current generation, with every commit made before this call counted in it: take
        it *before* reading what you wait on, then :meth:`wait` misses no later commit."""
        if self._path and self._changed():
            with self._cond:
                self._generation += 1
                self._cond.notify_all()
        return self._generation

    def wait(self, seen: int, deadline: float) -> int:
        """Return the generation once it differs from ``seen`` or ``deadline`` (monotonic) passed."""
        with self._cond:
            while self._generation == seen and self._leader:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self._generation
                self._cond.wait(remaining)
            if self._generation != seen:
                return self._generation
            self._leader = True
        try:
            self._lead(seen, deadline)
        finally:
            with self._cond:
                self._leader = False
                self._cond.notify_all()  # a follower takes over, or sees the change
        return self._generation

    def _lead(self, seen: int, deadline: float) -> None:
        """Check for changes until one is seen or the deadline passes."""
        interval = CHANGE_CHECK_SECONDS if self._path else self._fallback
        while True:
            if self._changed():
                with self._cond:
                    self._generation += 1
                    self._cond.notify_all()
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(interval, remaining))

    def _changed(self) -> bool:
        if not self._path:
            return True  # no way to know: every interval counts as a change
        with self._probe:
            version = self._read_version()
            changed = self._data_version is not None and version != self._data_version
            self._data_version = version
        return changed

    def _read_version(self) -> int | None:
        if self._conn is None or self._pid != os.getpid():  # a forked child opens its own
            self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)  # type: ignore[arg-type]
            self._pid = os.getpid()
            self._data_version = None
        try:
            return self._conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return None

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None


class RunWaiters:
    """Threads waiting for flow runs to become final, checked together on each change.

    One waiting thread at a time (the *leader*) watches the feed and, on a change, asks the
    store which waited-on runs are final, then wakes only their waiters: the others sleep on
    their own event, so 50 threads waiting through a storm of commits cost one query per
    change, not 50 thread wake-ups per change. When the leader leaves (its run is final, or its
    deadline passed) it wakes one other waiter to take over."""

    def __init__(self, feed: ChangeFeed, final_among: Callable[[Iterable[str]], set[str]]):
        self._feed = feed
        self._final_among = final_among  # one store query: which of these runs are final
        self._lock = threading.Lock()
        self._waiting: dict[str, list[threading.Event]] = {}
        self._final: set[str] = set()  # waited-on runs seen final (until their last waiter leaves)
        self._leader: threading.Event | None = None
        self._queried_at = float("-inf")

    def mark(self) -> int:
        """See :meth:`ChangeFeed.mark`: take it before reading the run."""
        return self._feed.mark()

    def wait(self, flow_run_id: str, seen: int, deadline: float) -> None:
        """Return once ``flow_run_id`` was seen final after ``seen`` (or at the deadline); the
        caller then reads it."""
        me = threading.Event()
        with self._lock:
            self._waiting.setdefault(flow_run_id, []).append(me)
        try:
            if self._feed.generation != seen:
                # A change was noticed between the caller's read and now: a query made for it
                # may have run before this thread was listed, so look once for this run alone.
                self._record(self._final_among([flow_run_id]))
            while flow_run_id not in self._final:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                with self._lock:
                    lead = self._leader is None
                    if lead:
                        self._leader = me
                if lead:
                    self._lead(flow_run_id, me, seen, deadline)
                    return
                me.wait(remaining)  # set when this run is final, or when it is this thread's turn to lead
                me.clear()
        finally:
            self._leave(flow_run_id, me)

    def _lead(self, flow_run_id: str, me: threading.Event, seen: int, deadline: float) -> None:
        try:
            while flow_run_id not in self._final and time.monotonic() < deadline:
                generation = self._feed.wait(seen, deadline)
                if generation == seen:
                    continue  # the deadline passed (the loop ends) or a spurious wake-up
                seen = generation
                self._space_out(deadline)
                with self._lock:
                    waited = list(self._waiting)
                self._queried_at = time.monotonic()
                self._record(self._final_among(waited))
        finally:
            with self._lock:
                self._leader = None  # the caller's _leave hands over

    def _record(self, final: set[str]) -> None:
        """Note which runs are final and wake their waiters."""
        if not final:
            return
        with self._lock:
            final = {run for run in final if run in self._waiting}  # a run nobody waits for now is not kept
            woken = [event for run in final for event in self._waiting[run]]
            self._final |= final
        for event in woken:
            event.set()

    def _leave(self, flow_run_id: str, me: threading.Event) -> None:
        """Stop waiting; with no leader left, wake one thread still waiting for a run not yet
        final to take over (also when this thread was woken to lead but found its run final)."""
        successor = None
        with self._lock:
            events = self._waiting.get(flow_run_id, [])
            if me in events:
                events.remove(me)
            if not events:
                self._waiting.pop(flow_run_id, None)
                self._final.discard(flow_run_id)
            if self._leader is None:
                successor = next((event for run, waiting in self._waiting.items() if run not in self._final
                                  for event in waiting), None)
        if successor is not None:
            successor.set()

    def _space_out(self, deadline: float) -> None:
        """Under a storm of commits (many running flows), one query per ``RECHECK_SECONDS``;
        a lone commit after a quiet spell is checked at once."""
        gap = self._queried_at + RECHECK_SECONDS - time.monotonic()
        if gap > 0:
            time.sleep(min(gap, max(0.0, deadline - time.monotonic())))


def sqlite_file(engine: Any) -> str | None:
    """The database file of a SQLite engine (None for other databases and in-memory ones)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None  # a URI database (tests' shared memory): no cross-connection counter to trust
    return url.database


_attach_lock = threading.Lock()


def waiting_for(store: Any, sqlite_path: str | None = None) -> tuple[ChangeFeed, RunWaiters]:
    """The change feed and run waiters of one store instance, made on first use; the feed
    watches ``sqlite_path`` when given (a store without an engine: the plain SQLite path),
    else the file of the store's engine."""
    found = store.__dict__.get("_change_waiting")
    if found is None:
        with _attach_lock:
            found = store.__dict__.get("_change_waiting")
            if found is None:
                feed = ChangeFeed(sqlite_path if sqlite_path is not None else sqlite_file(store.engine))
                found = store.__dict__["_change_waiting"] = (feed, RunWaiters(feed, store._final_flow_runs))
    return found


def wait_until_final(store: Any, flow_run_id: str, timeout: float, sqlite_path: str | None = None) -> Any:
    """``store.wait_for_flow_run``: the run as soon as it is final, or as it is at the timeout
    (``sqlite_path`` as for :func:`waiting_for`)."""
    deadline = time.monotonic() + max(0.0, timeout)
    _, waiters = waiting_for(store, sqlite_path)
    while True:
        seen = waiters.mark()  # before the read: a commit after it wakes the wait below
        run = store.read_flow_run(flow_run_id)
        if (run.state and run.state.is_final) or time.monotonic() >= deadline:
            return run
        waiters.wait(flow_run_id, seen, deadline)
