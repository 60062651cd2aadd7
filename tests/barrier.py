"""A file barrier that lines up child processes for real, so a test that claims concurrency
can prove it instead of hoping a shared wall-clock instant made the processes overlap.

Parties are plain ``python -c`` scripts. Each imports this module (the suite's ``tests``
folder is put on their ``PYTHONPATH`` by :func:`child_env`) and calls ``arrive(phase)``: it
writes ``<dir>/<phase>.<party>`` and returns once all parties have written theirs. Deadlines
are generous and scaled (``FLEETFLOW_TEST_TIMEOUT_SCALE``) and only end a broken test.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_TESTS_DIR = str(Path(__file__).resolve().parent)


class FileBarrier:
    def __init__(self, directory: str | os.PathLike[str], parties: int, party: str = "main"):
        self.dir = Path(directory)
        self.parties = parties
        self.party = party

    def arrived(self, phase: str) -> int:
        """How many parties have reached ``phase``."""
        return len(list(self.dir.glob(f"{phase}.*")))

    def arrive(self, phase: str, timeout: float = 120.0) -> None:
        """Mark this party as at ``phase`` and wait for the others."""
        marker = self.dir / f"{phase}.{self.party}"
        marker.write_text(str(os.getpid()))
        self.wait(phase, timeout)

    def wait(self, phase: str, timeout: float = 120.0) -> None:
        """Wait (without arriving) until every party reached ``phase``."""
        scale = max(1.0, float(os.environ.get("FLEETFLOW_TEST_TIMEOUT_SCALE", "1") or 1))
        deadline = time.monotonic() + timeout * scale
        while self.arrived(phase) < self.parties:
            if time.monotonic() > deadline:
                raise TimeoutError(f"barrier {phase!r}: {self.arrived(phase)} of {self.parties} parties arrived")
            time.sleep(0.005)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that imports :mod:`barrier`."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_TESTS_DIR, env.get("PYTHONPATH", "")) if p)
    return env
