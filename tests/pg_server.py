"""A throwaway PostgreSQL server for the test suite: Debian's postgresql, a temporary data
directory, trust auth, no durability (fsync off) for speed.

It listens only on a Unix-domain socket in its own temporary directory (no TCP port, so no
race between picking a free port and binding it; psycopg and SQLAlchemy take the directory as
``?host=/that/dir``). The server binaries are installed before pytest starts by
``scripts/ensure_test_deps.sh`` (``make test-deps``); when they are missing the session stops
with a one-line message naming that command. initdb/postgres refuse to run as root, so as root
every server command runs as the ``postgres`` user via ``runuser``.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from scratch import make_dir


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed and cannot be installed here (not root)."""


def _find_bin_dir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """``start()`` -> ``url`` / ``fresh_database()`` -> ``stop()``."""

    def __init__(self, dbname: str = "fleetflow"):
        self.dbname = dbname
        self.port = 5432  # only names the socket file inside our own directory
        self.dir: Path | None = None
        self._bin: Path | None = None
        self._counter = itertools.count(1)

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> "PostgresServer":
        self._bin = self._ensure_installed()
        self.dir = make_dir("fleetflow-pg-")  # in memory when there is room: see tests/scratch.py
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self._make_traversable(self.dir)
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        # listen_addresses='' : no TCP at all; the socket file is <dir>/.s.PGSQL.<port>.
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=400"
        )
        self._options = options
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.dir / "server.log"), "-w",
                  "-t", str(int(timeout)), "start")  # fmt: skip
        atexit.register(self.stop)  # even if the session is interrupted
        self._wait_ready(timeout)
        self._admin(f'CREATE DATABASE "{self.dbname}" TEMPLATE template0')
        return self

    def restart(self, timeout: float = 60.0) -> None:
        """Stop (fast: every connection is cut) and start again on the same port and data."""
        assert self.dir is not None
        data = self.dir / "data"
        self._run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        self._run("pg_ctl", "-D", str(data), "-o", self._options, "-l", str(self.dir / "server.log"), "-w",
                  "-t", str(int(timeout)), "start")  # fmt: skip
        self._wait_ready(timeout)

    def stop(self) -> None:
        if self.dir is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # ---- databases --------------------------------------------------------------------------
    def url_for(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@/{dbname}?host={self.dir}&port={self.port}"

    @property
    def url(self) -> str:
        """The URL of the default database (``fleetflow``)."""
        return self.url_for(self.dbname)

    def fresh_database(self, prefix: str = "test") -> str:
        """Create a new empty database and return its URL (isolation per test)."""
        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        """Drop a database :meth:`fresh_database` made, once its test is over: the session
        then ends with a few databases to delete instead of hundreds. Connections still open
        (a leaked pool, a process the test killed) are ended first (``WITH (FORCE)``)."""
        if self.dir is None:
            return
        name = url.split("/")[-1].split("?")[0]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log(self) -> str:
        assert self.dir is not None
        return (self.dir / "server.log").read_text(errors="replace")

    # ---- helpers ----------------------------------------------------------------------------
    def _admin(self, sql: str) -> None:
        with psycopg.connect(host=str(self.dir), port=self.port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._admin("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _run(self, tool: str, *args: str) -> None:
        assert self._bin is not None
        command = [str(self._bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd="/")
        if result.returncode != 0:
            log = ""
            if self.dir is not None and (self.dir / "server.log").exists():
                log = "\n--- server.log ---\n" + self.log()
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}{log}")

    @staticmethod
    def _make_traversable(path: Path) -> None:
        """The postgres user must be able to reach the data directory through every parent."""
        for parent in path.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)

    @staticmethod
    def _ensure_installed() -> Path:
        bin_dir = _find_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries are missing (no /usr/lib/postgresql/*/bin/initdb): run "
                "`make test-deps` (as root), or set FLEETFLOW_TEST_BACKENDS=sqlite."
            )
        return bin_dir
