"""``Process``: run a flow run as a local subprocess (the embedded default).

``memory`` (MiB) is a hard address-space limit (RLIMIT_AS) on Linux/macOS; a run that hits it
is reported as out of memory with the limit. ``cpu`` (ECS-style units, 1024 = 1 vCPU) is
enforced (:mod:`.cpu`: cgroup v2 ``cpu.max`` where writable, else CPU affinity) and the run's
``infrastructure`` record says how.

How a run's process starts, fastest first: forked from the worker's warm template
(:mod:`.fork_server`, Linux; milliseconds), handed to a pre-started runner (:mod:`.warm_pool`;
runs with a memory limit, whose address-space limit must not count the template's heap, or where
forking is off), or a fresh interpreter (a custom ``command``, or when neither is available).
Each way the process gets the same environment, working directory, session and output.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from typing import Any, ClassVar, Sequence

from pydantic import Field, field_validator

from ..exceptions import LaunchError
from ..procinfo import ProcessId, find_by_environment
from .cpu import enforce_cpu
from .fork_server import ForkedProcess, ForkServer, fork_available
from .warm_pool import WarmPool
from .base import (
    EXIT_OUT_OF_MEMORY, EXIT_STALE_LAUNCH, RUNTIME_MIN_MEMORY_MIB, Infrastructure, LaunchResult, LaunchStatus,
)

FORK_READY_TIMEOUT_SECONDS = 30.0  # a launch waits this long for a template still importing
FORK_RESTART_SECONDS = 5.0  # the least time between replacements of a template that died


class Process(Infrastructure):
    """A local subprocess running ``python -m fleetflow.runner <flow-run-id>``."""

    _block_type_slug = "process"
    _description = "Run each flow run as a local subprocess (the embedded default)."
    kind: ClassVar[str] = "process"

    env: dict[str, str | None] = Field(default_factory=dict, description="Extra environment variables (None unsets).")
    command: list[str] | None = Field(default=None, description="Command to run; default is the fleetflow runner.")
    working_dir: str | None = Field(default=None, description="Working directory of the process.")
    cpu: int | None = Field(default=None, ge=1, description="CPU units (1024 = 1 vCPU), enforced with cgroup v2 "
                            "cpu.max where writable, else CPU affinity; the run's record says which.")
    memory: int | None = Field(default=None, description="Memory limit in MiB, enforced as RLIMIT_AS "
                               f"(at least {RUNTIME_MIN_MEMORY_MIB}: the runtime itself needs that much).")
    stream_output: bool = Field(default=True, description="Pass the process's stdout/stderr through to the worker.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free-form labels (Prefect compatibility).")
    name: str | None = Field(default=None, description="Display name (Prefect compatibility).")

    @field_validator("memory")
    @classmethod
    def _enough_to_start(cls, v: int | None) -> int | None:
        if v is not None and v < RUNTIME_MIN_MEMORY_MIB:
            raise ValueError(f"memory={v} MiB is too small to import the fleetflow runtime; use at least "
                             f"{RUNTIME_MIN_MEMORY_MIB} MiB (the runner alone needs about 96 MiB of address space)")
        return v

    @field_validator("command")
    @classmethod
    def _non_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("command must not be empty; leave it unset to use the fleetflow runner")
        return v

    def launcher(self) -> "ProcessLauncher":
        return ProcessLauncher()

    def summary(self) -> dict[str, Any]:
        return {"kind": "process", "cpu": self.cpu, "memory": self.memory}


def _limit_memory(mib: int | None):
    if not mib:
        return None

    def apply() -> None:
        import resource

        limit = mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def run_environment(block: Process, env: dict[str, str]) -> dict[str, str | None]:
    """What a run's process gets on top of the worker's environment (None unsets), the same
    for a cold start and a pre-started runner."""
    run_env: dict[str, str | None] = {**env, **block.env}
    if block.memory:
        run_env["FLEETFLOW_MEMORY_LIMIT_MIB"] = str(block.memory)
    return run_env


def _worker_env() -> dict[str, str]:
    return {**os.environ, "MALLOC_ARENA_MAX": "2"}


def _template_env(settings: Any) -> dict[str, str]:
    """The fork template's environment: the worker's, plus where an embedded run's store is
    (what every run's environment says, so a forked child can keep the settings the template
    read instead of reading them again)."""
    env = _worker_env()
    if not settings.api_url:
        env.update(FLEETFLOW_HOME=str(settings.home), FLEETFLOW_DATABASE_URL=settings.resolved_database_url())
    return env


def cold_environment(block: Process, env: dict[str, str]) -> dict[str, str]:
    """The whole environment of a run's process: the worker's, plus the run's (None unsets)."""
    full_env = _worker_env()
    for key, value in run_environment(block, env).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return full_env


def _exit_code_lost(proc: Any) -> bool:
    """A forked run whose template died: its exit code will never arrive (judge by the pid)."""
    return isinstance(proc, ForkedProcess) and proc.exit_code_lost()


def parse_handle(handle: str) -> tuple[str, int, str | None]:
    pid = ProcessId.parse(handle)
    return pid.host, pid.pid, pid.start


class ProcessLauncher:
    """Starts, watches and kills runner subprocesses."""

    def __init__(self, warm: int | None = None, *, fork: bool | None = None) -> None:
        """``warm``: pre-started runners (default the setting); ``warm=0`` with ``fork`` unset
        pre-starts nothing at all (a launcher that only watches, e.g. the sweeper's)."""
        from ..settings import get_settings

        settings = get_settings()
        self._procs: dict[str, tuple[Any, int | None]] = {}
        self.warm = settings.process_warm_runners if warm is None else warm
        if fork is None:
            fork = settings.process_fork_server and warm != 0
        # Started now, so even the first launch finds a template that has done its imports.
        self._forks = ForkServer(_template_env(settings)) if fork and fork_available() else None
        self._fork_restarted = time.monotonic()
        # With a fork server, warm runners serve only what cannot fork (memory limits): made on demand.
        self._pool = WarmPool(self.warm) if self.warm and self._forks is None else None
        self._cap: int | None = None

    def set_concurrency(self, runs: int) -> None:
        """The most runs the worker executes at once: the warm pool never grows past it."""
        self._cap = runs
        if self._pool is not None:
            self._pool.set_cap(runs)

    @property
    def fork_server(self) -> ForkServer | None:
        """The fork server, when launches fork (for status output and tests)."""
        return self._forks

    async def launch(self, block: Process, flow_run: Any, *, env: dict[str, str], command: list[str]) -> LaunchResult:
        proc = None
        if block.command is None and self._forks is not None and not block.memory:
            proc = await self._fork(block, flow_run, env)
        if proc is None and block.command is None and self.warm:
            proc = self._take_warm(block, flow_run, env)
        if proc is None:
            proc = self._spawn_cold(block, env, command)
        handle = str(ProcessId.current(proc.pid))
        self._procs[handle] = (proc, block.memory)
        enforcement = enforce_cpu(proc.pid, block.cpu)
        return LaunchResult(handle=handle, infrastructure={**block.summary(), "pid": proc.pid,
                                                           "cpu_enforcement": enforcement})

    # ---- forked from the template (see .fork_server) -----------------------------------------
    async def _fork(self, block: Process, flow_run: Any, env: dict[str, str]) -> ForkedProcess | None:
        """The run's process forked from the warm template, or None (then it starts fresh):
        a template still importing is waited for, one that died is replaced."""
        assert self._forks is not None
        self._forks.ensure_running()
        deadline = time.monotonic() + FORK_READY_TIMEOUT_SECONDS
        while not self._forks.ready():
            if not self._forks.alive() or time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.01)
        assignment = {"flow_run_id": flow_run.id, "env": cold_environment(block, env),
                      "cwd": block.working_dir or os.getcwd(), "stream_output": block.stream_output}
        try:
            return self._forks.fork(assignment)
        except LaunchError:
            return None  # refused (e.g. the template grew a thread) or gone: a cold start instead

    def _spawn_cold(self, block: Process, env: dict[str, str], command: list[str]) -> subprocess.Popen:
        full_env = cold_environment(block, env)
        out = None if block.stream_output else subprocess.DEVNULL
        cmd = block.command or command
        try:
            return subprocess.Popen(cmd, env=full_env, cwd=block.working_dir, stdout=out, stderr=out,
                                    preexec_fn=_limit_memory(block.memory), start_new_session=True)
        except OSError as exc:
            raise LaunchError(f"could not start process {cmd[0]!r}: {exc}") from exc

    # ---- warm runners: pre-started `python -m fleetflow.runner --warm` (see .warm_pool) -----
    def _take_warm(self, block: Process, flow_run: Any, env: dict[str, str]) -> subprocess.Popen:
        """Hand the run to a pre-started runner, then top the pool up."""
        if self._pool is None:  # beside a fork server: only for runs that cannot fork
            self._pool = WarmPool(0, cap=self._cap)
        proc = self._pool.take()
        message = {"flow_run_id": flow_run.id, "env": run_environment(block, env), "memory_mib": block.memory,
                   "cwd": block.working_dir, "stream_output": block.stream_output}
        try:
            proc.stdin.write((json.dumps(message) + "\n").encode())  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        except OSError as exc:
            raise LaunchError(f"the pre-started runner died before taking run {flow_run.id}: {exc}") from exc
        finally:
            self._pool.refill()
        return proc

    def _replace_dead_template(self) -> None:
        """Start a new template when the old one died, at most every few seconds (a template
        that cannot start must not cost a start-up per tick; launches start fresh meanwhile)."""
        if self._forks is None or self._forks.alive():
            return
        if time.monotonic() - self._fork_restarted >= FORK_RESTART_SECONDS:
            self._fork_restarted = time.monotonic()
            self._forks.ensure_running()

    async def next_exit(self, timeout: float) -> None:
        """Return when the fork server has news (a forked run's process ended), or after
        ``timeout``; the worker waits on this while every slot is busy. Other launches are
        seen at the worker's next tick, as before."""
        fd = self._forks.fileno() if self._forks is not None else None
        if fd is None:
            await asyncio.sleep(timeout)
            return
        loop = asyncio.get_running_loop()
        news: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            loop.remove_reader(fd)  # before reading: the read may close the socket (template gone)
            self._forks.pump()  # type: ignore[union-attr]  # consumed, so an unread message cannot spin us
            if not news.done():
                news.set_result(None)

        loop.add_reader(fd, readable)
        try:
            await asyncio.wait_for(news, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)

    async def statuses(self, launches: Sequence[tuple[str, Any]]) -> dict[str, LaunchStatus]:
        if self._pool is not None:
            self._pool.refill()  # also shrinks the pool back once launches stop
        self._replace_dead_template()
        return {h: self._status(h) for h, _ in launches}

    def _status(self, handle: str) -> LaunchStatus:
        if handle in self._procs:
            proc, memory = self._procs[handle]
            code = proc.poll()
            if code is None and not _exit_code_lost(proc):
                return LaunchStatus(handle)
            del self._procs[handle]
            if code is not None:
                return exit_status(handle, code, memory)
        pid = ProcessId.parse(handle)
        if not pid.local:
            return LaunchStatus(handle, finished=True, missing=True, reason=f"process ran on another host ({pid.host})")
        if pid.alive():
            return LaunchStatus(handle)
        return LaunchStatus(handle, finished=True, reason=f"process {pid.pid} exited while no worker was watching; exit code unknown")

    async def kill(self, handle: str, block: Any = None, *, grace_seconds: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after the grace period; each signal only after checking the
        pid *and* its start time, so a reused pid is never signalled."""
        pid = ProcessId.parse(handle)
        if not pid.signal(signal.SIGTERM):
            return
        for _ in range(int(grace_seconds / 0.05)):
            await asyncio.sleep(0.05)
            proc = self._procs.get(handle, (None, None))[0]
            if proc is None or _exit_code_lost(proc):
                if not pid.alive():
                    return
            elif proc.poll() is not None:
                return
        pid.signal(signal.SIGKILL)

    async def find_launch(self, block: Any, flow_run: Any) -> str | None:
        """A runner started for the run's current attempt but never recorded: by its token in
        the process environment (cold starts; a pre-started runner records itself at claim)."""
        token = getattr(flow_run, "launch_token", None)
        found = find_by_environment("FLEETFLOW_LAUNCH_TOKEN", token) if token else None
        return str(found) if found else None

    async def close(self) -> None:
        """Stop the idle pre-started runners (closing stdin makes each exit at once)."""
        ready = self._pool.close() if self._pool is not None else []
        template = self._forks.close() if self._forks is not None else None
        for proc in ready + ([template] if template is not None else []):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def exit_status(handle: str, code: int, memory: int | None) -> LaunchStatus:
    """Turn an exit code into a status with a human reason."""
    if code == 0:
        return LaunchStatus(handle, finished=True, exit_code=0)
    if code == EXIT_STALE_LAUNCH:
        return LaunchStatus(handle, finished=True, exit_code=code, superseded=True,
                            reason="the runner's launch attempt was stale; it exited without running the flow")
    if code == EXIT_OUT_OF_MEMORY:
        return LaunchStatus(handle, finished=True, exit_code=code, out_of_memory=True,
                            reason=f"out of memory: the run exceeded its memory limit of {memory} MiB")
    if code < 0:
        name = signal.Signals(-code).name
        hint = f" (possibly out of memory: limit {memory} MiB)" if memory and -code == signal.SIGKILL else ""
        return LaunchStatus(handle, finished=True, exit_code=code, reason=f"process killed by {name}{hint}")
    return LaunchStatus(handle, finished=True, exit_code=code, reason=f"process exited with code {code}")
