"""The SQLite store's file and connection rules, shared by the SQLAlchemy store
(:class:`~.service.SQLiteOrchestrator`) and the plain SQLite path (:mod:`.lite`): owner-only
files, the pragmas every connection gets, and the per-file in-process write lock."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SQLITE_BUSY_TIMEOUT_MS = 60_000


_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


def process_write_lock(database: str) -> threading.Lock:
    """One lock per database file per process, shared by every Orchestrator on that file."""
    key = os.path.realpath(os.path.expanduser(database))
    with _write_locks_guard:
        return _write_locks.setdefault(key, threading.Lock())


def private_sqlite_files(database: Path, *, create: bool = True) -> None:
    """The database, its WAL and its shared-memory file are 0600 whatever the umask: they hold
    every run's parameters, logs and the encrypted blocks. The file is created owner-only
    before SQLite opens it (SQLite gives -wal and -shm the database file's mode)."""
    if create and not database.exists():
        try:
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError:
            return  # SQLite reports what is wrong when it opens the file
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        try:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except OSError:
            pass  # absent (no WAL yet), or another user's file


def sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see SQLiteOrchestrator)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    _enable_wal(cursor)
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _enable_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode = WAL``, retried while the file is locked: switching the journal
    mode of a new database takes an exclusive lock for which SQLite does not call the busy
    handler, so processes opening one fresh store at once could fail with "database is locked"
    despite ``busy_timeout`` (seen with four processes lined up on a barrier)."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
