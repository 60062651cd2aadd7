"""The worker: claim -> launch -> watch -> reconcile.

One asyncio loop per worker. It claims due runs of its pool atomically (two workers never
launch one run; each claim is a lease) -- embedded, each tick's claim waits up to
``poll_interval`` and is woken by the commit that creates a run; over HTTP a long-poll -- records a launch
attempt with a fresh token *before* starting the infrastructure, launches the run with that
token (the runner starts the run only if its token is still the current one), stores the
launch handle, checks all its launches in one batched call per backend, kills runs moved to
CANCELLING, and turns exits it did not expect into CRASHED states with the reason.

It renews the leases of the runs it holds; every ``reconcile_interval`` it sweeps expired
leases of its pool -- whoever held them -- and of runs outside any pool
(:mod:`.sweep`, :mod:`.reconcile`), so a restart, under any name, loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from .. import states as st
from ..exceptions import FleetflowError, InvalidStateTransition
from ..faults import fault
from ..infrastructure.base import LaunchStatus, attempt_environment, runner_environment
from ..settings import get_settings
from ..states import StateType
from .names import claim_name, default_name
from .offload import off_loop as _off
from . import capacity
from .resolve import ensure_work_pool, load_pool_infrastructure, resolve_infrastructure
from .retries import crash_or_relaunch
from .sweep import Found, Sweeper
from .token_sweep import sweep_run_tokens

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
    attempt: int | None = None  # the launch attempt this infrastructure runs (None: unknown)


def requeued_since(run: Any, attempt: int | None, handle: str | None = None) -> bool:
    """Whether the run was put back in the queue after ``attempt`` (whose infrastructure is
    ``handle``) ended: ``flow-run retry``, an infrastructure relaunch. The exit of that attempt's
    process is then not news about the run.

    Seen in the suite, twice: a retry issued the moment attempt 1 was FAILED, before the worker
    had reaped attempt 1's process, was CRASHED by that process's exit code. The second time the
    run had already been claimed again (PENDING, still numbered 1: the claim comes before the
    new attempt is recorded), so the number and the state alone cannot tell. The handle can: a
    requeue clears the run's ``infrastructure_pid``, the next attempt records its own, and an
    attempt never replaces its handle (the runner's claim only fills an empty one)."""
    if attempt is None:
        return False
    if handle is not None and run.infrastructure_pid != handle:
        return True
    return run.launch_attempt != attempt or run.state_type is StateType.SCHEDULED


def runner_env(flow_run_id: str, *, api_url: str | None = None, token: str | None = None) -> dict[str, str]:
    """What the launched runner needs to reach the same store: the server's URL and a token
    scoped to this run, or, embedded, the database URL."""
    s = get_settings()
    return runner_environment(flow_run_id, home=str(s.home), api_url=api_url, database_url=s.resolved_database_url(),
                              token=token)  # fmt: skip


CLAIM_LONG_POLL_SECONDS = 5.0  # how long one claim request waits on the server for a run


def runner_command(flow_run_id: str) -> list[str]:
    return [sys.executable, "-m", "fleetflow.runner", flow_run_id]


def attempt_env(run: Any, kind: str) -> dict[str, str]:
    """What a runner needs to claim its attempt: the token (and the number, for messages)."""
    return attempt_environment(run.launch_token, run.launch_attempt, kind)


class _WorkerSweeper(Sweeper):
    """A worker's sweeper: re-attaching means watching the launch from now on."""

    def __init__(self, worker: "Worker"):
        super().__init__(worker.client, worker.lease_owner, block_for=worker._block_for, launcher_for=worker._launcher)
        self.worker = worker

    def skip(self, run: Any) -> bool:
        # Its own launches in flight or watched: a late heartbeat (a loaded machine) must not
        # make a worker reconcile what it is doing right now.
        return run.id in self.worker.watched or run.id in self.worker.launching_ids

    async def on_reattach(self, run: Any, found: Found) -> None:
        handle = found.handle or run.infrastructure_pid
        if not handle or run.work_pool_name != self.worker.pool_name:
            return  # not ours to watch (another pool, a script flow): re-checked at the next sweep
        block = found.block or await _off(self.worker._block_for, run)
        started = run.state_type is not StateType.PENDING
        self.worker.watched[run.id] = Watched(run.id, handle, block, started=started, attempt=run.launch_attempt)
        log.info("re-attached to run %s (%s)", run.id, handle)


class Worker:
    """Launches the runs of one work pool."""

    def __init__(self, pool_name: str, *, name: str | None = None, limit: int | None = None,
                 poll_interval: float | None = None, client: OrchestratorAPI | None = None, queues: Sequence[str] | None = None):
        from ..client import get_client

        settings = get_settings()
        self.pool_name = pool_name
        self.queues = list(queues) if queues else None  # work queues to serve (None: all)
        self.explicit_name = name is not None
        self.name = name or default_name(pool_name)
        self.instance_id = secrets.token_hex(8)
        self.lease_owner = f"worker:{self.name}:{self.instance_id}"
        self.lease_seconds = settings.lease_seconds
        self.reconcile_interval = settings.reconcile_interval
        self.limit = limit
        self.poll_interval = poll_interval if poll_interval is not None else settings.worker_poll_interval
        self.heartbeat_interval = settings.worker_heartbeat_interval
        self.token_sweep_interval = settings.run_token_sweep_interval
        self.token_sweep_limit = settings.run_token_sweep_limit
        self._last_token_sweep = float("-inf")
        self.client = client or get_client()
        self.watched: dict[str, Watched] = {}
        self._launchers: dict[type, Any] = {}
        self._launching: set[asyncio.Task] = set()
        self.launching_ids: set[str] = set()
        self._pool: Any = None
        self._stop = asyncio.Event()
        self._last_heartbeat = 0.0
        self._last_sweep = 0.0
        self._claimer: asyncio.Future[None] | None = None
        # Embedded, a tick's claim waits up to one poll interval for a new run instead of the
        # loop sleeping it (0: claim and sleep, as over HTTP where the claimer long-polls).
        self._claim_wait = self.poll_interval
        self._sweeper = _WorkerSweeper(self)

    # ---- lifecycle ----------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    async def run(self, *, once: bool = False) -> None:
        """Work until stopped (SIGTERM/SIGINT or :meth:`stop`)."""
        await _off(self._learn_pool, await _off(ensure_work_pool, self.client, self.pool_name))
        stale_after = max(3 * self.heartbeat_interval, self.lease_seconds)
        await _off(claim_name, self.client, self.pool_name, self.name, self.instance_id, stale_after=stale_after)
        self._install_signal_handlers()
        await self.reconcile()
        try:
            while not self._stop.is_set():
                try:
                    await self.tick()
                    failed = False
                except Exception:  # noqa: BLE001 - e.g. the store restarting: keep working, say why
                    log.exception("worker %s: tick failed; retrying in %.1fs", self.name, self.poll_interval)
                    failed = True
                if once:
                    break
                if not failed and self._claims_wait_next_tick():
                    continue
                await self._pause()
        finally:
            await self.shutdown()

    def _claims_wait_next_tick(self) -> bool:
        """Embedded, with room for a run, the next tick's claim does the waiting (it returns as
        soon as a run is created), so the loop goes straight on: also right after a launch ended
        during this tick, instead of a poll interval later."""
        return getattr(self.client, "base_url", None) is None and self._claim_wait > 0 and self._capacity() > 0

    async def _pause(self) -> None:
        """Up to one poll interval: until stopped, or, when every slot is busy, until one of
        the launches ends (launchers that can tell, such as the fork server's, wake it at once)."""
        waits = [asyncio.ensure_future(self._stop.wait())]
        if self._capacity() <= 0:
            waits += [asyncio.ensure_future(launcher.next_exit(self.poll_interval))
                      for launcher in self._launchers.values() if hasattr(launcher, "next_exit")]
        _, pending = await asyncio.wait(waits, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def tick(self) -> None:
        """One round: heartbeat, claim and launch, check launches, handle cancellations, sweep.

        Over HTTP, claiming is a long-poll in its own task instead (one request waits on the
        server until a run is claimable: new runs start at once, without a request per tick)."""
        await _off(self._heartbeat)
        if getattr(self.client, "base_url", None) is None:
            await self._claim_and_launch(wait=self._claim_wait)
        elif self._claimer is None or self._claimer.done():
            self._claimer = asyncio.ensure_future(self._long_poll_claims())
        await self._check_launches()
        await self._handle_cancellations()
        if time.monotonic() - self._last_sweep >= self.reconcile_interval:
            await self.reconcile()
        if time.monotonic() - self._last_token_sweep >= self.token_sweep_interval:
            await self.sweep_run_tokens()

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
        self._stop.set()  # the long-poll claimer stops after its current request
        if self._claimer is not None:
            await asyncio.gather(self._claimer, return_exceptions=True)  # a long-poll ends within its wait
        if self._launching:
            await asyncio.gather(*self._launching, return_exceptions=True)
        await self._settle_finished()
        await _off(self._release_unlaunched)
        for launcher in self._launchers.values():
            await launcher.close()
        await _off(self.client.release_worker_name, self.pool_name, self.name, self.instance_id)
        log.info("worker %s stopped; %d run(s) left running for re-attachment", self.name, len(self.watched))

    def _release_unlaunched(self) -> None:
        """Runs claimed but never launched go back to the pool (at shutdown)."""
        for run in self.client.read_flow_runs(worker_name=self.name, state_types=[StateType.PENDING]):
            if not run.infrastructure_pid and run.id not in self.watched:
                self.client.reschedule_flow_run(run.id, self.lease_owner, f"released by worker {self.name} at shutdown")

    def _finishing(self) -> list[Watched]:
        """Watched launches whose run already reported a final state."""
        return [w for w in list(self.watched.values()) if self.client.read_flow_run(w.flow_run_id).state.is_final]

    async def _settle_finished(self, grace: float = 3.0) -> None:
        """Record exits since the last tick, giving runs that already reported a final state
        a moment to let their process exit, so shutdown reports only truly live runs."""
        deadline = time.monotonic() + grace
        while True:
            await self._check_launches()
            finishing = await _off(self._finishing)
            if not finishing or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.05)

    def _heartbeat(self) -> None:
        """Heartbeat the worker row and renew the leases of every run this worker holds."""
        now = time.monotonic()
        if now - self._last_heartbeat >= min(self.heartbeat_interval, self.lease_seconds / 3):
            self.client.worker_heartbeat(self.pool_name, self.name, hostname=socket.gethostname(), pid=os.getpid())
            self.client.renew_leases(self.lease_owner, lease_seconds=self.lease_seconds)
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
            self._launchers[kind] = launcher = block.launcher()
            if hasattr(launcher, "set_concurrency"):  # Process: warm runners never outnumber runs
                launcher.set_concurrency(self._max_runs())
        return self._launchers[kind]

    def _max_runs(self) -> int:
        """The most runs this worker executes at once."""
        pool_limit = self._pool.concurrency_limit if self._pool is not None else None
        return self.limit or pool_limit or getattr(self, "_cpus", None) or capacity.machine_cpus()

    # ---- reconcile ----------------------------------------------------------------------
    async def reconcile(self) -> None:
        """Sweep expired leases of this pool (any worker's: re-attach, reschedule or crash) and
        of runs outside any pool (script flows)."""
        self._last_sweep = time.monotonic()
        try:
            await self._sweeper.sweep(work_pool_name=self.pool_name)
            await self._sweeper.sweep(pooled=False)
        except FleetflowError as exc:  # e.g. the store is restarting: try again next sweep
            log.warning("reconcile sweep failed: %s", exc)

    async def sweep_run_tokens(self) -> list[str]:
        """Delete leftover token secrets of this pool's final runs (:mod:`.token_sweep`); only
        over HTTP, the only path that mints run tokens."""
        self._last_token_sweep = time.monotonic()
        if self._pool is None or getattr(self.client, "base_url", None) is None:
            return []
        return await sweep_run_tokens(self.client, self._pool, self._launcher, limit=self.token_sweep_limit)

    # ---- claim and launch ---------------------------------------------------------------
    def _capacity(self) -> int:
        busy = len(self.watched) + len(self._launching)
        if self.limit is not None:
            return max(0, self.limit - busy)
        if self._pool is None or self._pool.concurrency_limit is not None or self._pool.type != "process":
            return capacity.REMOTE_BATCH  # the pool's limit is enforced by the claim itself
        return capacity.process_capacity(
            cpus=self._cpus, memory_mib=self._memory_mib, busy=busy,
            busy_memory_mib=sum(getattr(w.block, "memory", None) or 0 for w in self.watched.values()),
            run_memory_mib=self._pool_run_memory,
        )

    def _learn_pool(self, pool: Any) -> None:
        """What the default capacity needs: the pool, the machine, the pool block's memory."""
        self._pool = pool
        self._cpus, self._memory_mib = capacity.machine_cpus(), capacity.machine_memory_mib()
        try:
            self._pool_run_memory = getattr(load_pool_infrastructure(self.client, pool), "memory", None)
        except FleetflowError:
            self._pool_run_memory = None

    async def _long_poll_claims(self) -> None:
        """Claim over HTTP until the worker stops, the waiting done off the event loop."""
        while not self._stop.is_set():
            capacity = self._capacity()
            if capacity <= 0:
                await _off(self.client.claim_flow_runs, self.pool_name, self.name, limit=0)
                await asyncio.sleep(max(self.poll_interval, 0.5))
                continue
            claimed = await _off(
                self.client.claim_flow_runs, self.pool_name, self.name, limit=capacity, queues=self.queues,
                lease_owner=self.lease_owner, lease_seconds=self.lease_seconds, wait=CLAIM_LONG_POLL_SECONDS,
            )  # fmt: skip
            if claimed:
                fault("worker.after_claim")  # the same fault point as the embedded claim path
            for run in claimed:
                if self._stop.is_set():  # claimed while stopping: hand it back to the pool
                    await _off(self.client.reschedule_flow_run, run.id, self.lease_owner,
                               f"released by worker {self.name} at shutdown")  # fmt: skip
                else:
                    self._start_launch(run)

    async def _claim_and_launch(self, wait: float = 0.0) -> None:
        """Claim what is due; with ``wait``, wait up to that long for a run to become due (the
        store wakes the claim when one is created, so it starts at once instead of at the next
        tick; the wait replaces the sleep between ticks)."""
        capacity = self._capacity()
        if capacity <= 0:
            await _off(self.client.claim_flow_runs, self.pool_name, self.name, limit=0)
            return
        claimed = await _off(self.client.claim_flow_runs, self.pool_name, self.name, limit=capacity, queues=self.queues,
                             lease_owner=self.lease_owner, lease_seconds=self.lease_seconds, wait=wait)  # fmt: skip
        if claimed:
            fault("worker.after_claim")
        for run in claimed:
            self._start_launch(run)

    def _start_launch(self, run: Any) -> None:
        task = asyncio.ensure_future(self._launch(run))
        self._launching.add(task)
        self.launching_ids.add(run.id)
        task.add_done_callback(self._launching.discard)
        task.add_done_callback(lambda _: self.launching_ids.discard(run.id))

    def _block_for(self, run: Any) -> Any:
        deployment = self.client.read_deployment(run.deployment_id)
        return resolve_infrastructure(self.client, deployment, run)

    async def _launch(self, run: Any) -> None:
        try:
            block = await _off(self._block_for, run)
            # The attempt (number + token) is recorded before anything starts: only its runner
            # may start the run, so a relaunch after any crash cannot execute it twice.
            attempt = await _off(self.client.begin_launch_attempt, run.id, self.lease_owner,
                                 lease_seconds=self.lease_seconds)  # fmt: skip
            if attempt is None:
                return  # no longer ours (cancelled, or reconciled by another worker)
            api_url = getattr(self.client, "base_url", None)  # set on the HTTP client only
            token = await _off(self.client.mint_run_token, run.id) if api_url else None
            env = {**runner_env(run.id, api_url=api_url, token=token), **attempt_env(attempt, getattr(block, "kind", ""))}
            result = await self._launcher(block).launch(block, attempt, env=env, command=runner_command(run.id))
        except Exception as exc:
            await _off(crash_or_relaunch, self.client, run.id, f"launch failed: {type(exc).__name__}: {exc}")
            log.warning("launch of run %s failed: %s", run.id, exc)
            return
        fault("worker.after_start")
        # The handle is stored before anything waits on the launch: a restarted worker finds it
        # (and if this worker dies first, the runner's token finds it).
        await _off(self.client.update_flow_run, run.id, infrastructure_pid=result.handle,
                   infrastructure=result.infrastructure)  # fmt: skip
        self.watched[run.id] = Watched(run.id, result.handle, block, attempt=attempt.launch_attempt)

    # ---- watch --------------------------------------------------------------------------
    async def _check_launches(self) -> None:
        by_launcher: dict[int, tuple[Any, list[Watched]]] = {}
        for w in list(self.watched.values()):
            launcher = self._launcher(w.block)
            by_launcher.setdefault(id(launcher), (launcher, []))[1].append(w)
        if by_launcher:
            fault("worker.during_watch")
        for launcher, items in by_launcher.values():
            statuses = await launcher.statuses([(w.handle, w.block) for w in items])
            for w in items:
                await self._on_status(w, statuses.get(w.handle) or LaunchStatus(w.handle, finished=True, missing=True))

    def _unwatch(self, w: Watched) -> None:
        """Stop watching ``w``, and only ``w``: while its status was being read, a newer attempt
        of the same run may have been launched and be watched under the same run id."""
        if self.watched.get(w.flow_run_id) is w:
            del self.watched[w.flow_run_id]

    async def _on_status(self, w: Watched, status: LaunchStatus) -> None:
        if status.finished:
            self._unwatch(w)
            await _off(self._on_finished, w, status)
            return
        w.started = w.started or status.started
        timeout = getattr(w.block, "task_start_timeout_seconds", None)
        if not w.started and timeout and time.monotonic() - w.launched_at > timeout:
            await self._launcher(w.block).kill(w.handle, w.block)
            self._unwatch(w)
            await _off(crash_or_relaunch, self.client, w.flow_run_id,
                       f"TaskFailedToStart: did not start within task_start_timeout_seconds={timeout}; stopped")

    def _on_finished(self, w: Watched, status: LaunchStatus) -> None:
        if status.superseded:
            return  # a runner of a stale attempt exited without touching the run: not our news
        run = self.client.read_flow_run(w.flow_run_id)
        if run.state is None or run.state.is_final or requeued_since(run, w.attempt, w.handle):
            return
        if run.state_type is StateType.CANCELLING:
            self._set(run.id, st.Cancelled(message="infrastructure stopped on request"))
        else:
            crash_or_relaunch(self.client, run.id, status.crash_message())

    async def _handle_cancellations(self) -> None:
        if not self.watched:
            return
        cancelling = await _off(self.client.read_flow_runs, worker_name=self.name, state_types=[StateType.CANCELLING])
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
        await _off(self._set, w.flow_run_id, st.Cancelled(message="cancelled; infrastructure stopped"))


def start_worker(pool_name: str, **kwargs: Any) -> None:
    """Blocking entry point used by ``fleetflow worker start``."""
    asyncio.run(Worker(pool_name, **kwargs).run())
