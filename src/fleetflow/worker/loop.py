"""The worker: claim -> launch -> watch -> reconcile.

One asyncio loop per worker. Every ``poll_interval`` it claims due runs of its pool
atomically (two workers never launch one run), launches each on the run's infrastructure
(the pool's block merged with the deployment's and the run's overrides), stores the launch
handle on the run *before* watching it, checks all its launches in one batched call per
backend, kills runs moved to CANCELLING, and turns exits it did not expect into CRASHED
states with the reason. On start it re-attaches to the launches a previous incarnation of
itself left behind, so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import states as st
from ..exceptions import FleetflowError, InvalidStateTransition
from ..infrastructure.base import LaunchStatus
from ..settings import get_settings
from ..states import StateType
from .resolve import ensure_work_pool, resolve_infrastructure

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

log = logging.getLogger("fleetflow.worker")


@dataclass
class Watched:
    """A launch this worker is responsible for."""

    flow_run_id: str
    handle: str
    block: Any
    launched_at: float = field(default_factory=time.monotonic)
    started: bool = False


def runner_env(flow_run_id: str, *, api_url: str | None = None, token: str | None = None) -> dict[str, str]:
    """What the launched runner needs to reach the same store: the server's URL and a token
    scoped to this run (never the worker's own key, never a database URL), or, embedded,
    the database URL."""
    s = get_settings()
    env = {"FLEETFLOW_FLOW_RUN_ID": flow_run_id, "FLEETFLOW_HOME": str(s.home)}
    if api_url:
        env["FLEETFLOW_API_URL"] = api_url
        if token:
            env["FLEETFLOW_API_KEY"] = token
    else:
        env["FLEETFLOW_DATABASE_URL"] = s.resolved_database_url()
    return env


CLAIM_LONG_POLL_SECONDS = 5.0  # how long one claim request waits on the server for a run


def runner_command(flow_run_id: str) -> list[str]:
    return [sys.executable, "-m", "fleetflow.runner", flow_run_id]


class Worker:
    """Launches the runs of one work pool."""

    def __init__(self, pool_name: str, *, name: str | None = None, limit: int | None = None,
                 poll_interval: float | None = None, client: OrchestratorAPI | None = None):
        from ..client import get_client

        settings = get_settings()
        self.pool_name = pool_name
        self.name = name or f"{socket.gethostname()}-{pool_name}"
        self.limit = limit
        self.poll_interval = poll_interval if poll_interval is not None else settings.worker_poll_interval
        self.heartbeat_interval = settings.worker_heartbeat_interval
        self.client = client or get_client()
        self.watched: dict[str, Watched] = {}
        self._launchers: dict[type, Any] = {}
        self._launching: set[asyncio.Task] = set()
        self._stop = asyncio.Event()
        self._last_heartbeat = 0.0
        self._claimer: asyncio.Future[None] | None = None

    # ---- lifecycle ----------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    async def run(self, *, once: bool = False) -> None:
        """Work until stopped (SIGTERM/SIGINT or :meth:`stop`)."""
        ensure_work_pool(self.client, self.pool_name)
        self._install_signal_handlers()
        await self.reconcile()
        try:
            while not self._stop.is_set():
                await self.tick()
                if once:
                    break
                try:
                    await asyncio.wait_for(self._stop.wait(), self.poll_interval)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self.shutdown()

    async def tick(self) -> None:
        """One round: heartbeat, claim and launch, check launches, handle cancellations.

        Over HTTP, claiming is a long-poll in its own task instead (one request waits on the
        server until a run is claimable: new runs start at once, without a request per tick)."""
        self._heartbeat()
        if getattr(self.client, "base_url", None) is None:
            await self._claim_and_launch()
        elif self._claimer is None or self._claimer.done():
            self._claimer = asyncio.ensure_future(self._long_poll_claims())
        await self._check_launches()
        await self._handle_cancellations()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass

    async def shutdown(self) -> None:
        """Stop claiming. Launched runs keep running (their handles are stored; a restarted
        worker re-attaches); runs claimed but not launched go back to SCHEDULED."""
        if self._claimer is not None:
            await asyncio.gather(self._claimer, return_exceptions=True)  # a long-poll ends within its wait
        if self._launching:
            await asyncio.gather(*self._launching, return_exceptions=True)
        await self._settle_finished()
        for run in self.client.read_flow_runs(worker_name=self.name, state_types=[StateType.PENDING]):
            if not run.infrastructure_pid:
                self._set(run.id, st.Scheduled(message=f"released by worker {self.name} at shutdown"))
        for launcher in self._launchers.values():
            await launcher.close()
        log.info("worker %s stopped; %d run(s) left running for re-attachment", self.name, len(self.watched))

    async def _settle_finished(self, grace: float = 3.0) -> None:
        """Record exits since the last tick, giving runs that already reported a final state
        a moment to let their process exit, so shutdown reports only truly live runs."""
        deadline = time.monotonic() + grace
        while True:
            await self._check_launches()
            finishing = [w for w in self.watched.values() if self.client.read_flow_run(w.flow_run_id).state.is_final]
            if not finishing or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.05)

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat >= self.heartbeat_interval:
            self.client.worker_heartbeat(self.pool_name, self.name, hostname=socket.gethostname(), pid=os.getpid())
            self._last_heartbeat = now

    def _set(self, flow_run_id: str, state: st.State) -> bool:
        try:
            self.client.set_flow_run_state(flow_run_id, state)
            return True
        except InvalidStateTransition:
            return False

    def _launcher(self, block: Any) -> Any:
        kind = type(block)
        if kind not in self._launchers:
            self._launchers[kind] = block.launcher()
        return self._launchers[kind]

    # ---- reconcile ----------------------------------------------------------------------
    async def reconcile(self) -> None:
        """Re-attach to live launches of a previous incarnation; crash or relaunch the rest."""
        active = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
        for run in self.client.read_flow_runs(worker_name=self.name, state_types=active, limit=10_000):
            if run.infrastructure_pid:
                try:
                    block = self._block_for(run)
                except FleetflowError as exc:
                    self._set(run.id, st.Crashed(message=f"cannot re-attach: {exc}"))
                    continue
                self.watched[run.id] = Watched(run.id, run.infrastructure_pid, block, started=True)
                log.info("re-attached to run %s (%s)", run.id, run.infrastructure_pid)
            elif run.state_type is StateType.PENDING:
                await self._adopt_or_launch(run)
            else:
                self._set(run.id, st.Crashed(message="the worker restarted and found no launch handle for this run"))

    async def _adopt_or_launch(self, run: Any) -> None:
        """A claimed run without a handle: adopt a launch that exists (ECS: by startedBy and the
        run-id tag), else launch it now (RunTask's clientToken makes a repeat harmless)."""
        try:
            block = self._block_for(run)
            handle = await self._launcher(block).find_launch(block, run)
        except Exception as exc:
            self._set(run.id, st.Crashed(message=f"cannot reconcile: {type(exc).__name__}: {exc}"))
            return
        if handle is None:
            self._start_launch(run)
            return
        self.client.update_flow_run(run.id, infrastructure_pid=handle)
        self.watched[run.id] = Watched(run.id, handle, block)
        log.info("adopted unrecorded launch %s for run %s", handle, run.id)

    # ---- claim and launch ---------------------------------------------------------------
    def _capacity(self) -> int:
        busy = len(self.watched) + len(self._launching)
        return 10 if self.limit is None else max(0, self.limit - busy)

    async def _long_poll_claims(self) -> None:
        """Claim over HTTP until the worker stops, the waiting done off the event loop."""
        while not self._stop.is_set():
            capacity = self._capacity()
            if capacity <= 0:
                await asyncio.to_thread(self.client.claim_flow_runs, self.pool_name, self.name, limit=0)
                await asyncio.sleep(max(self.poll_interval, 0.5))
                continue
            runs = await asyncio.to_thread(self.client.claim_flow_runs, self.pool_name, self.name,
                                           limit=capacity, wait=CLAIM_LONG_POLL_SECONDS)  # fmt: skip
            for run in runs:
                if self._stop.is_set():  # claimed while stopping: hand it back to the pool
                    self._set(run.id, st.Scheduled(message=f"released by worker {self.name} at shutdown"))
                else:
                    self._start_launch(run)

    async def _claim_and_launch(self) -> None:
        capacity = self._capacity()
        if capacity <= 0:
            self.client.claim_flow_runs(self.pool_name, self.name, limit=0)
            return
        for run in self.client.claim_flow_runs(self.pool_name, self.name, limit=capacity):
            self._start_launch(run)

    def _start_launch(self, run: Any) -> None:
        task = asyncio.ensure_future(self._launch(run))
        self._launching.add(task)
        task.add_done_callback(self._launching.discard)

    def _block_for(self, run: Any) -> Any:
        deployment = self.client.read_deployment(run.deployment_id)
        return resolve_infrastructure(self.client, deployment, run)

    async def _launch(self, run: Any) -> None:
        try:
            block = self._block_for(run)
            api_url = getattr(self.client, "base_url", None)  # set on the HTTP client only
            token = await asyncio.to_thread(self.client.mint_run_token, run.id) if api_url else None
            result = await self._launcher(block).launch(
                block, run, env=runner_env(run.id, api_url=api_url, token=token), command=runner_command(run.id)
            )
        except Exception as exc:
            self._set(run.id, st.Crashed(message=f"launch failed: {type(exc).__name__}: {exc}"))
            log.warning("launch of run %s failed: %s", run.id, exc)
            return
        # The handle is stored before anything waits on the launch: a restarted worker finds it.
        self.client.update_flow_run(run.id, infrastructure_pid=result.handle, infrastructure=result.infrastructure)
        self.watched[run.id] = Watched(run.id, result.handle, block)

    # ---- watch --------------------------------------------------------------------------
    async def _check_launches(self) -> None:
        by_launcher: dict[int, tuple[Any, list[Watched]]] = {}
        for w in list(self.watched.values()):
            launcher = self._launcher(w.block)
            by_launcher.setdefault(id(launcher), (launcher, []))[1].append(w)
        for launcher, items in by_launcher.values():
            statuses = await launcher.statuses([(w.handle, w.block) for w in items])
            for w in items:
                await self._on_status(w, statuses.get(w.handle) or LaunchStatus(w.handle, finished=True, missing=True))

    async def _on_status(self, w: Watched, status: LaunchStatus) -> None:
        if status.finished:
            self.watched.pop(w.flow_run_id, None)
            self._on_finished(w, status)
            return
        w.started = w.started or status.started
        timeout = getattr(w.block, "task_start_timeout_seconds", None)
        if not w.started and timeout and time.monotonic() - w.launched_at > timeout:
            await self._launcher(w.block).kill(w.handle, w.block)
            self.watched.pop(w.flow_run_id, None)
            self._set(w.flow_run_id, st.Crashed(message=f"did not start within task_start_timeout_seconds={timeout}; stopped"))

    def _on_finished(self, w: Watched, status: LaunchStatus) -> None:
        run = self.client.read_flow_run(w.flow_run_id)
        if run.state is None or run.state.is_final:
            return
        if run.state_type is StateType.CANCELLING:
            self._set(run.id, st.Cancelled(message="infrastructure stopped on request"))
        else:
            self._set(run.id, st.Crashed(message=status.crash_message()))

    async def _handle_cancellations(self) -> None:
        if not self.watched:
            return
        cancelling = self.client.read_flow_runs(worker_name=self.name, state_types=[StateType.CANCELLING])
        targets = [w for run in cancelling if (w := self.watched.pop(run.id, None)) is not None]
        # Kills wait out a grace period each; run them together so one slow stop delays no other.
        await asyncio.gather(*(self._cancel(w) for w in targets))

    async def _cancel(self, w: Watched) -> None:
        try:
            await self._launcher(w.block).kill(w.handle, w.block)
        except FleetflowError as exc:  # e.g. AccessDenied on StopTask: keep watching, retry next tick
            log.warning("could not stop %s for run %s: %s", w.handle, w.flow_run_id, exc)
            self.watched[w.flow_run_id] = w
            return
        self._set(w.flow_run_id, st.Cancelled(message="cancelled; infrastructure stopped"))


def start_worker(pool_name: str, **kwargs: Any) -> None:
    """Blocking entry point used by ``fleetflow worker start``."""
    asyncio.run(Worker(pool_name, **kwargs).run())
