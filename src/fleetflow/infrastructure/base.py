"""The Infrastructure interface the worker drives: launch, check many, kill.

A block (``Process``, ``ECSTask``) is configuration; its launcher does the I/O. Launchers are
async so one worker can watch hundreds of launches without a thread per run, and ``statuses``
takes every handle at once so a backend can batch (ECS: one DescribeTasks per 100 tasks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Sequence

from ..blocks import Block

# Exit codes of ``python -m fleetflow.runner``: the runner sets them, every launcher reads them.
EXIT_OK, EXIT_FAILED, EXIT_CRASHED = 0, 1, 2
EXIT_OUT_OF_MEMORY = 86  # the run exceeded its memory limit; reported as out of memory
# Measured: the runner (Python, fleetflow, SQLAlchemy, pydantic) runs a small flow in 96 MiB of
# address space; below this a limit cannot even import the runtime, so it is refused up front.
RUNTIME_MIN_MEMORY_MIB = 128
EXIT_STALE_LAUNCH = 87  # this runner's attempt was not the run's current one: it ran nothing


def runner_environment(flow_run_id: str, *, home: str, api_url: str | None, database_url: str,
                       token: str | None = None) -> dict[str, str]:
    """What a launched runner needs to reach the store (built the same way for a launch and
    for the size checks done before a run exists): over HTTP the server's URL and a token for
    this run only (never the worker's key, never a database URL)."""
    env = {"FLEETFLOW_FLOW_RUN_ID": flow_run_id, "FLEETFLOW_HOME": home}
    if api_url:
        env["FLEETFLOW_API_URL"] = api_url
        if token:
            env["FLEETFLOW_API_KEY"] = token
    else:
        env["FLEETFLOW_DATABASE_URL"] = database_url
    return env


LAUNCH_TOKEN_CHARS = 32  # secrets.token_hex(16)


def attempt_environment(token: str, attempt: int, kind: str) -> dict[str, str]:
    """What a runner needs to claim its launch attempt: the token (and the number, for messages)."""
    return {"FLEETFLOW_LAUNCH_TOKEN": token, "FLEETFLOW_LAUNCH_ATTEMPT": str(attempt), "FLEETFLOW_LAUNCH_KIND": kind}


@dataclass
class LaunchResult:
    """What a launch returns: the durable handle and a summary for the run record."""

    handle: str
    infrastructure: dict[str, Any] = field(default_factory=dict)


@dataclass
class LaunchStatus:
    """Where a launch is now. ``finished`` with an exit code / reason once it has stopped."""

    handle: str
    finished: bool = False
    started: bool = True
    exit_code: int | None = None
    reason: str | None = None
    out_of_memory: bool = False
    missing: bool = False
    superseded: bool = False  # a stale attempt's runner exited without touching the run

    def crash_message(self) -> str:
        if self.missing:
            return self.reason or "the infrastructure no longer knows this launch"
        parts = [self.reason] if self.reason else []
        if self.exit_code is not None:
            parts.append(f"exit code {self.exit_code}")
        return "; ".join(parts) or "stopped without reporting a final state"


class Launcher(Protocol):
    """I/O side of an infrastructure kind."""

    async def launch(self, block: Any, flow_run: Any, *, env: dict[str, str], command: list[str]) -> LaunchResult: ...

    async def statuses(self, launches: Sequence[tuple[str, Any]]) -> dict[str, LaunchStatus]:
        """Status of every ``(handle, block)`` pair; the block says where to look (cluster,
        credentials), which matters after a restart when the launcher never saw the launch."""

    async def kill(self, handle: str, block: Any, *, grace_seconds: float = 10.0) -> None: ...

    async def close(self) -> None: ...

    async def find_launch(self, block: Any, flow_run: Any) -> str | None:
        """A launch of ``flow_run`` that exists but was never recorded (the worker died between
        starting it and storing the handle), or None."""


class Infrastructure(Block):
    """Base of infrastructure blocks; subclasses name their launcher and their summary."""

    _block_abstract: ClassVar[bool] = True
    kind: ClassVar[str] = ""

    def launcher(self) -> Launcher:
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """Kind and size for run records and the run tree."""
        return {"kind": self.kind}
