"""A local fleetflow server for the ``--api`` benchmarks: ``fleetflow server start --port 0``
in its own process (so it does not share the benchmark's GIL), its URL and first admin key
read from what it announces, and the client environment pointed at it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from typing import Iterator


def start_server(home: str, database_url: str | None = None) -> tuple[subprocess.Popen[str], str, str]:
    """(the server process, its URL, its first admin key), once it has announced both."""
    env = {**os.environ, "FLEETFLOW_HOME": home}
    for name in ("FLEETFLOW_API_URL", "FLEETFLOW_FAULT_POINTS"):
        env.pop(name, None)
    if database_url:
        env["FLEETFLOW_DATABASE_URL"] = database_url
    proc = subprocess.Popen([sys.executable, "-m", "fleetflow", "server", "start", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)  # fmt: skip
    url = key = None
    for line in proc.stdout:  # type: ignore[union-attr]
        url = url or _find(r"listening on (http://\S+)", line)
        key = key or _find(r"FLEETFLOW_API_KEY=(\S+)", line)
        if url and key:
            return proc, url, key
    raise RuntimeError(f"the server did not start (exit {proc.poll()})")


@contextlib.contextmanager
def local_server(home: str, database_url: str | None = None) -> Iterator[tuple[str, str]]:
    proc, url, key = start_server(home, database_url)
    saved = {k: os.environ.get(k) for k in ("FLEETFLOW_API_URL", "FLEETFLOW_API_KEY", "FLEETFLOW_DATABASE_URL")}
    os.environ.update(FLEETFLOW_API_URL=url, FLEETFLOW_API_KEY=key)
    os.environ.pop("FLEETFLOW_DATABASE_URL", None)
    try:
        yield url, key
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _find(pattern: str, line: str) -> str | None:
    match = re.search(pattern, line)
    return match.group(1) if match else None
