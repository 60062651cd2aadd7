"""Leases for flow runs executing in this process, renewed from a background thread.

Every run executing here -- a launched run its runner claimed, a ``python script.py`` flow,
an in-process sub-flow -- is leased to this process (``process:<host>:<pid>:<start time>``).
One job on the process's ticker thread (:mod:`fleetflow.ticker`) renews them all in one UPDATE
every third of the lease. If the process dies (SIGKILL, OOM, a lost host), the leases lapse and
any worker, the scheduler, the server or ``fleetflow flow-run reconcile`` marks the runs
CRASHED with when they were last seen.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from .. import states as st
from ..orchestrator.pid import current_pid
from ..procinfo import ProcessId
from ..settings import get_settings
from ..ticker import Job, ticker
from .grouping import by_client

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

log = logging.getLogger("fleetflow.lease")


_owner: list[tuple[int, str]] = [(0, "")]  # (pid, its owner string): one tuple, replaced whole


def process_owner() -> str:
    """The lease owner (and launch handle) of this process: worked out once per process (it
    reads ``/proc/self/stat`` and the host name; a run process asks three times on its way to
    RUNNING), and so also stable for the process's life, as its leases need."""
    pid, owner = _owner[0]
    if pid != current_pid():
        owner = str(ProcessId.current())
        _owner[0] = (current_pid(), owner)
    return owner


class LeaseKeeper:
    """Renews the leases of the runs this process executes, until each is final."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, Any] = {}  # run id -> client
        self._job: Job | None = None
        self._job_pid = 0  # the process the job was scheduled in (a forked child schedules its own)

    def hold(self, client: OrchestratorAPI, flow_run_id: str) -> None:
        with self._lock:
            self._held[flow_run_id] = client
            if self._job is None or self._job_pid != current_pid():
                self._job = ticker.every(get_settings().lease_seconds / 3, self.renew_all, "lease renewal")
                self._job_pid = current_pid()

    def release(self, flow_run_id: str) -> None:
        with self._lock:
            self._held.pop(flow_run_id, None)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def renew_all(self) -> None:
        """Renew every held lease (the ticker's job; stays scheduled while nothing is held)."""
        seconds = get_settings().lease_seconds
        with self._lock:
            if self._job is not None:
                self._job.interval = seconds / 3  # the setting as it is now, from the next renewal on
            groups = by_client([(client, run_id) for run_id, client in self._held.items()])
        for client, ids in groups:
            self._renew(client, ids, seconds)

    def _renew(self, client: OrchestratorAPI, ids: list[str], seconds: float) -> None:
        try:
            renewed = set(client.renew_leases(process_owner(), lease_seconds=seconds, take=ids))
        except Exception as exc:  # noqa: BLE001 - the store may be restarting: keep trying
            log.warning("could not renew the leases of %d run(s): %s", len(ids), exc)
            return
        for run_id in set(ids) - renewed:  # final (or deleted): nothing left to hold
            self.release(run_id)


keeper = LeaseKeeper()


def enter_running(engine: Any) -> None:
    """The flow engine's way into RUNNING, holding a lease from then on.

    A launched run arrives RUNNING already: its runner claimed its attempt atomically, and
    RUNNING -> RUNNING is not accepted. Any other run (a script flow, an in-process sub-flow)
    moves to RUNNING here and is leased to this process.
    """
    run = engine.flow_run
    owner = process_owner()
    if not (run.state_type is st.StateType.RUNNING and run.lease_owner == owner):
        engine._set(st.Running())
        engine.client.acquire_lease(run.id, owner, lease_seconds=get_settings().lease_seconds)
    keeper.hold(engine.client, run.id)


def leave(flow_run_id: str) -> None:
    """The run reached a final state: stop renewing its lease."""
    keeper.release(flow_run_id)
