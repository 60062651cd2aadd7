"""The worker makes every store call off its event loop (over HTTP each one is a request that
would stall watching launches, long-poll claims and lease renewals), on every backend.

The worker runs in a thread with its own loop, on the real client wrapped by a recorder that
notes which thread each store call came from, then delegates to the real client unchanged."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from fleetflow.cancellation import cancel_flow_run
from fleetflow.deployments import ensure_work_pool, run_deployment
from fleetflow.states import StateType
from fleetflow.worker import Worker
from worker_helpers import deploy, wait_final, wait_for


class ThreadRecorder:
    """Every call made through it, as (method name, thread id), before the real client runs it."""

    def __init__(self, client: Any):
        self.client = client
        self.calls: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.client, name)
        if not callable(value):
            return value

        def recorded(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls.append((name, threading.get_ident()))
            return value(*args, **kwargs)

        return recorded


def _run_worker(worker: Worker, loop_ids: list[int], started: threading.Event) -> None:
    loop = asyncio.new_event_loop()
    loop_ids.append(threading.get_ident())
    worker.loop = loop  # type: ignore[attr-defined]
    started.set()
    try:
        loop.run_until_complete(worker.run())
    finally:
        loop.close()


def test_no_store_call_runs_on_the_worker_loop(temp_store, project):
    deploy(project, "echo", "quick")
    deploy(project, "sleepy", "slow")
    ensure_work_pool(temp_store, "test-pool")
    recorder = ThreadRecorder(temp_store)
    worker = Worker("test-pool", name="w-off-loop", poll_interval=0.1, client=recorder)
    loop_ids: list[int] = []
    started = threading.Event()
    thread = threading.Thread(target=_run_worker, args=(worker, loop_ids, started), daemon=True)
    thread.start()
    assert started.wait(30)
    try:
        done = run_deployment("echo/quick", parameters={"x": 3}, as_subflow=False)
        assert done.state.type is StateType.COMPLETED and done.result()["x"] == 3
        slow = run_deployment("sleepy/slow", parameters={"seconds": 120}, as_subflow=False, timeout=0)
        wait_for(lambda: temp_store.read_flow_run(slow.id).state_type is StateType.RUNNING, what="the slow run to run")
        cancel_flow_run(temp_store, slow.id)
        assert wait_final(temp_store, slow.id).state.type is StateType.CANCELLED
    finally:
        worker.loop.call_soon_threadsafe(worker.stop)  # type: ignore[attr-defined]
        thread.join(timeout=60)
    assert not thread.is_alive()
    names = {name for name, _ in recorder.calls}
    # the calls of every phase: start, claim, launch, watch, cancel, sweep, shutdown
    assert {"claim_worker_name", "claim_flow_runs", "begin_launch_attempt", "update_flow_run", "read_flow_run",
            "read_flow_runs", "set_flow_run_state", "worker_heartbeat", "renew_leases", "read_expired_leases",
            "release_worker_name"} <= names, names
    on_loop = sorted({name for name, ident in recorder.calls if ident == loop_ids[0]})
    assert on_loop == []
