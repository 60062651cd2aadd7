"""Chaos: kill things where it hurts and count runs lost, executed twice and stuck (all 0).

Every flow execution appends a line to its run's marker file, so "executed twice" is counted
from what really ran, not from states. Times to settle are measured and printed, never asserted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from chaos_helpers import (
    WorkerProc, count, create_runs, deploy, executions, max_overlap, record, settle, wait_until,
)
from fleetflow.procinfo import ProcessId
from fleetflow.states import StateType

pytestmark = pytest.mark.chaos


def _backend(store) -> str:
    if "http" in type(store).__name__.lower():
        return "http"
    return "sqlite" if "sqlite" in repr(store) else "postgres"


def _assert_zero(counts) -> None:
    record(counts)
    assert (counts.lost, counts.twice, counts.stuck) == (0, 0, 0), counts


def _keys(n: int, prefix: str = "r") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


# ---- a worker SIGKILLed (or frozen, then killed) at each named fault point ------------------
@pytest.mark.parametrize("point,action", [
    ("worker.after_claim", "kill"),
    ("worker.after_start", "kill"),
    ("worker.after_start", "hang"),  # frozen between starting the process and saving its handle
    ("worker.during_watch", "kill"),
])
def test_worker_killed_at_fault_point(temp_store, chaos_env, project, markers, tmp_path, point, action):
    deploy(project, "d", "chaos")
    reached = tmp_path / "reached"
    faulty = WorkerProc("chaos", faults=f"{point}={action}", marker=reached)
    try:
        ids = create_runs("marked/d", 4, markers)
        wait_until(lambda: reached.exists() or faulty.proc.poll() is not None, timeout=60, what=f"{point} reached")
        faulty.kill()  # a no-op for `kill`; ends the frozen worker for `hang`
        fault_at = time.monotonic()
        survivor = WorkerProc("chaos")
        try:
            runs, _ = settle(temp_store, ids)
        finally:
            survivor.stop()
    finally:
        faulty.kill()
    counts = count(f"worker {action} at {point}", _backend(temp_store), runs, _keys(4), markers,
                   time.monotonic() - fault_at)
    _assert_zero(counts)


# ---- three workers with default names on one host ------------------------------------------
def test_three_default_named_workers_share_a_pool(temp_store, chaos_env, project, markers):
    deploy(project, "d", "chaos")
    # 12 runs keep all three workers claiming at once; benchmarks/chaos_trials.py runs more.
    ids = create_runs("marked/d", 12, markers, seconds=0.05)
    start = time.monotonic()
    workers = [WorkerProc("chaos") for _ in range(3)]
    try:
        runs, _ = settle(temp_store, ids)
    finally:
        for w in workers:
            w.stop()
    names = {w.name for w in temp_store.read_workers("chaos")}
    assert len(names) == 3  # unique default names
    _assert_zero(count("three default-named workers", _backend(temp_store), runs, _keys(12), markers,
                       time.monotonic() - start))


def test_explicit_name_held_by_a_live_worker_is_refused(temp_store, chaos_env):
    first = WorkerProc("chaos", name="only-one")
    second = None
    try:
        wait_until(lambda: temp_store.read_worker("chaos", "only-one"), what="first worker registered")
        second = WorkerProc("chaos", name="only-one")
        assert second.wait_exit() != 0
        message = second.stderr_tail()
        assert "held by a live worker" in message and f"pid {first.pid}" in message
    finally:
        first.stop()
        if second is not None:  # a second that was not refused must not outlive the test
            second.stop()


# ---- a worker restarted under a new name -------------------------------------------------------
def test_worker_restarted_under_a_new_name(temp_store, chaos_env, project, markers):
    deploy(project, "d", "chaos")
    old = WorkerProc("chaos", name="old-host")
    try:
        ids = create_runs("marked/d", 6, markers, seconds=2.0)
        wait_until(lambda: sum(executions(markers, k) for k in _keys(6)) >= 3, what="runs executing")
    finally:
        old.kill()
    fault_at = time.monotonic()
    new = WorkerProc("chaos", name="new-host")
    try:
        runs, _ = settle(temp_store, ids)
    finally:
        new.stop()
    _assert_zero(count("worker restarted under a new name", _backend(temp_store), runs, _keys(6), markers,
                       time.monotonic() - fault_at))


# ---- a runner SIGKILLed (its worker alive, or dead too) ----------------------------------------
@pytest.mark.parametrize("worker_dies_too", [False, True])
def test_runner_sigkilled(temp_store, chaos_env, project, markers, worker_dies_too):
    deploy(project, "d", "chaos")
    worker = WorkerProc("chaos")
    try:
        [run_id] = create_runs("marked/d", 1, markers, seconds=30)
        wait_until(lambda: executions(markers, "r0") == 1, what="the flow executing")
        run = temp_store.read_flow_run(run_id)
        if worker_dies_too:
            worker.kill()
        assert ProcessId.parse(run.infrastructure_pid).signal(signal.SIGKILL)
        fault_at = time.monotonic()
        if worker_dies_too:
            worker = WorkerProc("chaos")
        runs, _ = settle(temp_store, [run_id])
    finally:
        worker.stop()
    counts = count(f"runner SIGKILLed{' with its worker' if worker_dies_too else ''}", _backend(temp_store),
                   runs, ["r0"], markers, time.monotonic() - fault_at, expect="CRASHED")
    _assert_zero(counts)
    assert "SIGKILL" in runs[0].state.message or "infrastructure is gone" in runs[0].state.message


# ---- a `python script.py` flow SIGKILLed ------------------------------------------------------
def test_script_flow_sigkilled_is_swept(temp_store, chaos_env, project, markers):
    script = subprocess.Popen([sys.executable, str(project / "script.py"), str(project), "s0", str(markers), "60"],
                              env=os.environ.copy())
    try:
        wait_until(lambda: executions(markers, "s0") == 1, what="the script flow executing")
        [run] = temp_store.read_flow_runs(flow_name="marked")
        assert run.state_type is StateType.RUNNING and run.lease_owner
    finally:
        script.kill()
        script.wait()
    fault_at = time.monotonic()
    sweeper = WorkerProc("some-other-pool")  # any long-running fleetflow process sweeps script flows
    try:
        runs, _ = settle(temp_store, [run.id])
    finally:
        sweeper.stop()
    counts = count("script flow SIGKILLed", _backend(temp_store), runs, ["s0"], markers,
                   time.monotonic() - fault_at, expect="CRASHED")
    _assert_zero(counts)
    assert "lease expired" in runs[0].state.message


# ---- pid reuse on cancel --------------------------------------------------------------------
def test_cancel_after_pid_reuse_signals_nothing(temp_store, chaos_env, project, markers):
    """The run's handle names pid P with start time S; P now belongs to another process (start
    S'). Cancel must not signal it, and the run must not stay CANCELLING."""
    script = subprocess.Popen([sys.executable, str(project / "script.py"), str(project), "c0", str(markers), "60"],
                              env=os.environ.copy())
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        wait_until(lambda: executions(markers, "c0") == 1, what="the script flow executing")
        [run] = temp_store.read_flow_runs(flow_name="marked")
        script.kill()
        script.wait()
        other = ProcessId.current(bystander.pid)
        reused = ProcessId(other.host, other.pid, str(int(other.start) + 7))  # same pid, not the same process
        temp_store.update_flow_run(run.id, infrastructure_pid=str(reused))
        start = time.monotonic()
        from typer.testing import CliRunner

        from fleetflow.cli import app

        out = CliRunner().invoke(app, ["flow-run", "cancel", run.id])
        assert out.exit_code == 0, out.output
        runs, _ = settle(temp_store, [run.id])
        assert bystander.poll() is None  # the unrelated process was not signalled
    finally:
        bystander.kill()
        bystander.wait()
        script.kill()
        script.wait()
    _assert_zero(count("cancel after pid reuse", _backend(temp_store), runs, ["c0"], markers,
                       time.monotonic() - start, expect="CANCELLED"))


# ---- PostgreSQL restarted mid-run ---------------------------------------------------------------
@pytest.fixture
def own_postgres():
    from pg_server import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.mark.postgres
def test_postgres_restarted_mid_run(own_postgres, chaos_env, project, markers, tmp_path):
    from fleetflow.testing import temporary_store

    with temporary_store(database_url=own_postgres.fresh_database()) as store:
        deploy(project, "d", "chaos")
        worker = WorkerProc("chaos")
        try:
            ids = create_runs("marked/d", 4, markers, seconds=4.0)
            wait_until(lambda: sum(executions(markers, k) for k in _keys(4)) == 4, what="all runs executing")
            own_postgres.restart()
            fault_at = time.monotonic()
            runs, _ = settle(store, ids)
        finally:
            worker.stop()
        _assert_zero(count("PostgreSQL restarted mid-run", "postgres", runs, _keys(4), markers,
                           time.monotonic() - fault_at))


# ---- the Process concurrency default ---------------------------------------------------------
def test_process_pool_runs_at_most_one_run_per_cpu_by_default(temp_store, chaos_env, project, markers):
    from fleetflow.worker.capacity import machine_cpus

    deploy(project, "t", "chaos", flow_name="timed")
    ids = create_runs("timed/t", 3 * machine_cpus() + 1, markers, seconds=1.0)
    start = time.monotonic()
    worker = WorkerProc("chaos")  # no --limit, no pool limit
    try:
        runs, _ = settle(temp_store, ids)
    finally:
        worker.stop()
    counts = count("Process pool default concurrency", _backend(temp_store), runs, _keys(len(ids)), markers,
                   time.monotonic() - start)
    peak = max_overlap(markers)
    counts.detail = f"peak {peak} concurrent on {machine_cpus()} CPUs"
    _assert_zero(counts)
    assert 1 <= peak <= machine_cpus(), counts.detail
