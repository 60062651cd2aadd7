"""Sweeping expired leases: read them, win each one by compare-and-set, look at the
infrastructure, and apply :func:`.reconcile.decide`.

Used by every worker (its pool's runs, and runs outside any pool), by the scheduler and the
server (runs outside any pool), and by ``fleetflow flow-run reconcile`` (everything). A
sweeper that cannot watch (the CLI, the scheduler) still decides; for a live launch it only
holds the lease until the next sweep, so the run is looked at again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .. import states as st
from ..exceptions import FleetflowError, InvalidStateTransition
from ..procinfo import ProcessId, find_by_environment
from ..settings import get_settings
from ..states import utcnow
from .offload import off_loop
from .reconcile import Action, Decision, Launch, LeaseView, RunView, decide
from .retries import crash_or_relaunch

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

log = logging.getLogger("fleetflow.reconcile")
LAUNCH_TOKEN_ENV = "FLEETFLOW_LAUNCH_TOKEN"


@dataclass
class Found:
    """What the infrastructure says about one run's launch, and the handle if one was found."""

    launch: Launch
    handle: str | None = None
    block: Any = None


@dataclass
class Outcome:
    run_id: str
    decision: Decision
    found: Found


def view(run: Any) -> tuple[RunView, LeaseView]:
    """The inputs of :func:`decide` for a run read by ``read_expired_leases``."""
    expires = run.lease_expires
    return (RunView(run.state_type, run.launch_attempt, run.infrastructure_pid),
            LeaseView(run.lease_owner, expires, expires is None or expires <= utcnow()))


def _process_status(handle: str) -> Launch:
    pid = ProcessId.parse(handle)
    if not pid.local:
        return Launch.UNKNOWN
    return Launch.ALIVE if pid.alive() else Launch.GONE


class Sweeper:
    """Reconciles runs whose lease lapsed. ``block_for(run)`` and ``launcher_for(block)`` come
    from a worker; without them only local processes can be checked."""

    def __init__(self, client: OrchestratorAPI, owner: str, *, block_for: Callable[[Any], Any] | None = None,
                 launcher_for: Callable[[Any], Any] | None = None):
        self.client = client
        self.owner = owner
        self.block_for = block_for
        self.launcher_for = launcher_for
        self.lease_seconds = get_settings().lease_seconds

    async def sweep(self, *, work_pool_name: str | None = None, pooled: bool | None = None) -> list[Outcome]:
        outcomes = []
        grace = max(self.lease_seconds * 2, 60.0)
        expired = await off_loop(self.client.read_expired_leases, work_pool_name=work_pool_name, pooled=pooled,
                                 unleased_grace_seconds=grace)  # fmt: skip
        for run in expired:
            if self.skip(run):
                continue
            if await off_loop(self.client.take_over_lease, run, self.owner, lease_seconds=self.lease_seconds) is None:
                continue  # renewed meanwhile, or another reconciler won it
            outcome = await self.reconcile_one(run)
            outcomes.append(outcome)
        return outcomes

    def skip(self, run: Any) -> bool:
        """Hook: runs this sweeper is handling itself right now (a worker's own launches)."""
        return False

    async def reconcile_one(self, run: Any) -> Outcome:
        found = await self.find(run)
        run_view, lease_view = view(run)
        decision = decide(run_view, lease_view, found.launch, lease_seconds=self.lease_seconds)
        await self.apply(run, decision, found)
        log.info("reconciled run %s (%s, lease of %s): %s %s", run.id, run.state_type, run.lease_owner,
                 decision.action.value, decision.message)
        return Outcome(run.id, decision, found)

    # ---- looking at the infrastructure ---------------------------------------------------------
    async def find(self, run: Any) -> Found:
        handle = run.infrastructure_pid
        try:
            if handle and handle.startswith("process:"):
                return Found(_process_status(handle), handle)
            if handle:
                return await self._launcher_status(run, handle)
            if run.lease_owner and run.lease_owner.startswith("process:"):
                return Found(_process_status(run.lease_owner), None)
            if run.launch_token:
                return await self._find_unrecorded(run)
        except (FleetflowError, ValueError) as exc:
            log.warning("cannot check the infrastructure of run %s: %s", run.id, exc)
            return Found(Launch.UNKNOWN, handle)
        return Found(Launch.GONE if not run.launch_token else Launch.UNKNOWN, handle)

    async def _launcher_status(self, run: Any, handle: str) -> Found:
        if self.block_for is None or self.launcher_for is None:
            return Found(Launch.UNKNOWN, handle)
        block = await off_loop(self.block_for, run)
        statuses = await self.launcher_for(block).statuses([(handle, block)])
        status = statuses.get(handle)
        return Found(Launch.GONE if status is None or status.finished else Launch.ALIVE, handle, block)

    async def _find_unrecorded(self, run: Any) -> Found:
        """A launch started but never recorded: a local runner by its token, else the launcher
        (ECS: ListTasks by startedBy and the run-id tag)."""
        local = find_by_environment(LAUNCH_TOKEN_ENV, run.launch_token)
        if local is not None:
            return Found(Launch.ALIVE, str(local))
        if self.block_for is None or self.launcher_for is None:
            return Found(Launch.UNKNOWN)
        block = await off_loop(self.block_for, run)
        handle = await self.launcher_for(block).find_launch(block, run)
        return Found(Launch.ALIVE if handle else Launch.UNKNOWN, handle, block)

    # ---- acting --------------------------------------------------------------------------------
    async def apply(self, run: Any, decision: Decision, found: Found) -> None:
        action = decision.action
        if action is Action.REATTACH:
            if found.handle and found.handle != run.infrastructure_pid:
                await off_loop(self.client.update_flow_run, run.id, infrastructure_pid=found.handle)
            await self.on_reattach(run, found)
        elif action is Action.RESCHEDULE:
            await off_loop(self.client.reschedule_flow_run, run.id, self.owner, decision.message)
        elif action is Action.CRASH:
            await off_loop(crash_or_relaunch, self.client, run.id, decision.message)
        elif action is Action.KILL:
            await self._kill(run, found)
            await off_loop(self._set, run.id, st.Cancelled(message=decision.message))
        elif action is Action.CANCEL:
            await off_loop(self._set, run.id, st.Cancelled(message=decision.message))

    async def on_reattach(self, run: Any, found: Found) -> None:
        """Hook: a worker starts watching; others hold the lease until the next sweep."""

    async def _kill(self, run: Any, found: Found) -> None:
        handle = found.handle or run.infrastructure_pid
        if handle and handle.startswith("process:"):
            import signal

            ProcessId.parse(handle).signal(signal.SIGKILL)
        elif handle and found.block is not None and self.launcher_for is not None:
            await self.launcher_for(found.block).kill(handle, found.block)

    def _set(self, flow_run_id: str, state: st.State) -> None:
        try:
            self.client.set_flow_run_state(flow_run_id, state)
        except InvalidStateTransition:
            pass  # it moved on by itself meanwhile (e.g. its runner reported at the last moment)


def sweeper_owner(role: str) -> str:
    """Lease owner of a sweeping process that is not a worker (scheduler, server, CLI)."""
    return f"{role}:{ProcessId.current()}"


async def sweep_unpooled(client: OrchestratorAPI, owner: str) -> list[Outcome]:
    """Runs outside every pool (``python script.py`` flows): any long-running process sweeps them."""
    return await Sweeper(client, owner).sweep(pooled=False)


class _Launchers:
    """One launcher per infrastructure kind, closed at the end (for one-shot sweeps)."""

    def __init__(self) -> None:
        self.by_kind: dict[type, Any] = {}

    def __call__(self, block: Any) -> Any:
        kind = type(block)
        if kind not in self.by_kind:
            self.by_kind[kind] = _quiet_launcher(block)
        return self.by_kind[kind]

    async def close(self) -> None:
        for launcher in self.by_kind.values():
            await launcher.close()


def _quiet_launcher(block: Any) -> Any:
    from ..infrastructure.process import ProcessLauncher

    # A one-shot sweep launches nothing: no pre-started runners.
    return ProcessLauncher(warm=0) if getattr(block, "kind", "") == "process" else block.launcher()


async def reconcile_all(client: OrchestratorAPI, *, owner: str | None = None) -> list[Outcome]:
    """Sweep every expired lease once, checking each run's infrastructure (``fleetflow
    flow-run reconcile``)."""
    from .resolve import resolve_infrastructure

    launchers = _Launchers()

    def block_for(run: Any) -> Any:
        return resolve_infrastructure(client, client.read_deployment(run.deployment_id), run)

    try:
        sweeper = Sweeper(client, owner or sweeper_owner("reconcile"), block_for=block_for, launcher_for=launchers)
        return await sweeper.sweep()
    finally:
        await launchers.close()


__all__ = ["Found", "Outcome", "Sweeper", "reconcile_all", "sweep_unpooled", "sweeper_owner", "view"]
