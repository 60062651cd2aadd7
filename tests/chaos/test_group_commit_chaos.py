"""Chaos: a ``python script.py`` flow with group commit on, SIGKILLed at a random point.

The script prints one line per task run the engine has acknowledged (the task call returned,
so ``create_task_run`` and ``set_task_run_state(COMPLETED)`` both returned). After the kill we
compare what the store holds with what was acknowledged:

* the committed task runs are a prefix of the calls, in order (no gaps: commits keep order);
* acknowledged records missing from the store are at most what group commit may hold
  uncommitted (the batch being committed plus the buffer, each bounded by back-pressure);
* the flow run is never COMPLETED with records missing: either it completed and holds every
  task run, or the lease rules end it CRASHED.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap

import pytest

from chaos_helpers import Counts, record, wait_until
from fleetflow.orchestrator import Orchestrator
from fleetflow.states import StateType

pytestmark = pytest.mark.chaos

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from fleetflow import flow, task
    from fleetflow.runtime import flow_run

    @task
    def step(i: int) -> int:
        return i

    @flow
    def many(n: int) -> int:
        os.write(1, f"run {flow_run.id}\\n".encode())
        for i in range(n):
            step(i)
            os.write(1, f"{i}\\n".encode())  # acknowledged: the engine returned from the task call
        return n

    many(int(sys.argv[1]))
    os.write(1, b"done\\n")
    """
)
MAX_RECORDS = 30  # small batches, so a kill often lands mid-batch
RECORDS_PER_TASK = 3  # PENDING, RUNNING, COMPLETED
UNCOMMITTED_BOUND = 2 * 4 * MAX_RECORDS  # the batch in flight + the buffer, each <= 4 x max_records


def _run_and_kill(script, env: dict[str, str], n: int, kill_after: int) -> tuple[str, list[int], bool]:
    """Start the script, SIGKILL it once it acknowledged ``kill_after`` task runs (or once it
    finished, when ``kill_after`` > n); the flow run id, every acknowledged index, finished?"""
    proc = subprocess.Popen([sys.executable, str(script), str(n)], stdout=subprocess.PIPE, env=env)
    try:
        first = proc.stdout.readline().decode()  # type: ignore[union-attr]
        assert first.startswith("run "), first
        lines: list[str] = []
        while len(lines) < kill_after:
            line = proc.stdout.readline().decode().strip()  # type: ignore[union-attr]
            if not line or line == "done":
                lines.append(line)
                break
            lines.append(line)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read().decode().split()  # type: ignore[union-attr]
        proc.wait(timeout=60)
    lines += rest
    acked = [int(x) for x in lines if x.isdigit()]
    return first.split()[1], acked, "done" in lines


def _swept(store: Orchestrator, flow_run_id: str):
    """The run once final: a dead script's lapsed lease is swept to CRASHED."""
    from fleetflow.worker.sweep import reconcile_all

    def final():
        run = store.read_flow_run(flow_run_id)
        if not (run.state and run.state.is_final):
            asyncio.run(reconcile_all(store))
            run = store.read_flow_run(flow_run_id)
        return run if run.state and run.state.is_final else None

    return wait_until(final, timeout=90, what="the killed flow run swept final",
                      seen=lambda: store.read_flow_run(flow_run_id).state)


@pytest.mark.parametrize("n", [60, 100_000])
@pytest.mark.parametrize("trial", range(3))
def test_sigkill_at_a_random_point_never_leaves_a_silently_incomplete_run(store_url, chaos_env, tmp_path, n, trial):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "FLEETFLOW_DATABASE_URL": store_url, "FLEETFLOW_GROUP_COMMIT_MAX_RECORDS": str(MAX_RECORDS),
           "FLEETFLOW_TASK_RUN_LOG_LINES": "false"}
    kill_after = random.randint(1, min(n + 1, 400))  # n + 1: after the flow finished
    flow_run_id, acked, finished = _run_and_kill(script, env, n, kill_after)
    assert acked == list(range(len(acked)))

    store = Orchestrator.create(store_url)
    try:
        run = _swept(store, flow_run_id)
        tasks = store.read_task_runs(flow_run_id)
    finally:
        store.dispose()
    keys = sorted(int(t.dynamic_key) for t in tasks)
    completed = sorted(int(t.dynamic_key) for t in tasks if t.state.type is StateType.COMPLETED)
    unacked_lost = len(acked) - len(completed)
    detail = f"killed after {len(acked)} acknowledged; {len(keys)} committed; state {run.state.type.value}"
    record(Counts(f"group commit: script SIGKILLed (n={n})", "sqlite" if "sqlite" in store_url else "postgres",
                  1, int(run.state.type is StateType.COMPLETED and len(completed) < n), 0, 0, 0.0, detail))

    assert keys == list(range(len(keys))), detail  # committed in call order, no gaps
    assert completed == list(range(len(completed))), detail
    assert len(keys) - len(completed) <= 1, detail  # at most the task in flight is not final
    assert len(completed) <= len(acked) + 1, detail  # nothing recorded that never ran
    assert max(unacked_lost, 0) * RECORDS_PER_TASK <= UNCOMMITTED_BOUND, detail
    if run.state.type is StateType.COMPLETED:
        assert len(completed) == n, detail  # complete means every task run is there
    else:
        assert run.state.type is StateType.CRASHED and "lease expired" in (run.state.message or ""), detail
