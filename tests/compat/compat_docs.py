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


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``fleetflow ...`` as a user types it, through the command's own entry (``fleetflow.cli.app``,
    what ``python -m fleetflow`` calls), in this process, from ``cwd``.

    Why not a subprocess: each one spent 0.5 s of CPU (several seconds of wall time at load)
    importing the CLI, and these tests ran about a hundred of them for what happens after the
    imports. ``tests/unit/cli/test_cli_app.py`` runs the real ``python -m fleetflow`` process.
    What an entrypoint import leaves behind (``sys.path``, ``sys.modules``) is undone, as a
    process exit would.
    """
    from typer.testing import CliRunner

    from fleetflow.cli import app

    saved_path, saved_modules, saved_cwd = list(sys.path), set(sys.modules), os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner().invoke(app, list(args), prog_name="fleetflow", env={"COLUMNS": "200"})
    finally:
        os.chdir(saved_cwd)
        added = [p for p in sys.path if p not in saved_path] + ([str(cwd)] if cwd is not None else [])
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:  # the project's own modules, nothing installed
            origin = getattr(sys.modules[name], "__file__", None) or ""
            if any(origin.startswith(str(Path(p).resolve())) for p in added if p):
                del sys.modules[name]
    return subprocess.CompletedProcess(["fleetflow", *args], result.exit_code, result.stdout, result.stderr)


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
