"""Helpers for the Prefect 2 documentation examples in tests/compat (a plain module with a
unique name, imported by the test files of this folder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from waiting import wait_until


def write_project(root: Path, source: str, name: str = "flows.py") -> Path:
    """A one-file project whose code a deployment can point at."""
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(textwrap.dedent(source))
    return root


def run_script(path: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run a Python file in a fresh interpreter with the test's environment (its store)."""
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=timeout, cwd=path.parent)


def cli(*args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """``fleetflow ...`` as a real subprocess, as a user types it."""
    return subprocess.run([sys.executable, "-m", "fleetflow", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=timeout, cwd=cwd)


class Background:
    """A long-running fleetflow command (worker, agent, served flow), stopped by the test."""

    def __init__(self, *cmd: str, cwd: Path | None = None):
        self.proc = subprocess.Popen(list(cmd), env=os.environ.copy(), cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait_polling(self, client: Any, pool: str) -> None:
        def polled() -> Any:
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited early: {self.proc.stdout.read()[-3000:]}")
            try:
                return client.read_work_pool(pool).last_polled
            except Exception:
                return None

        wait_until(polled, f"a worker polling pool {pool!r}")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out or ""
