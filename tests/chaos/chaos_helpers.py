"""Pieces of the chaos scenarios: a project whose flow writes one marker line per execution,
worker processes with fault points, and the counts (lost / executed twice / stuck).

Plain functions, so ``benchmarks/chaos_trials.py`` runs the same scenarios with larger counts.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import chaos_table
from chaos_table import format_table  # noqa: F401  (benchmarks/chaos_trials.py prints it too)

FLOWS = textwrap.dedent(
    '''
    import os, time
    from fleetflow import flow

    @flow
    def marked(key: str, marker_dir: str, seconds: float = 0.3):
        # One line per execution of the flow body: two lines for one key = executed twice.
        with open(os.path.join(marker_dir, key), "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        time.sleep(seconds)
        return key

    @flow
    def timed(key: str, marker_dir: str, seconds: float = 1.0):
        # One line per execution with its start and end: overlaps give the real concurrency.
        start = time.time()
        time.sleep(seconds)
        with open(os.path.join(marker_dir, key), "a") as fh:
            fh.write(f"{os.getpid()},{start},{time.time()}\\n")
        return key
    '''
)

SCRIPT = textwrap.dedent(
    '''
    import sys
    sys.path.insert(0, sys.argv[1])
    from flows import marked
    marked(sys.argv[2], sys.argv[3], seconds=float(sys.argv[4]))
    '''
)

# Short leases so a lost executor is noticed within seconds; a sweep several times a second.
CHAOS_ENV = {
    "FLEETFLOW_LEASE_SECONDS": "3",
    "FLEETFLOW_RECONCILE_INTERVAL": "0.25",
    "FLEETFLOW_WORKER_HEARTBEAT_INTERVAL": "0.5",
}
# Generous: at load 20 on 2 cores, 30 Process runs over HTTP needed 131 s. Only a failing test
# waits this long; no assertion is about time.
SETTLE_DEADLINE = 240.0


@dataclasses.dataclass
class Counts:
    scenario: str
    backend: str
    runs: int
    lost: int
    twice: int
    stuck: int
    settle_seconds: float
    detail: str = ""

    def row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def make_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "flows.py").write_text(FLOWS)
    (root / "script.py").write_text(SCRIPT)
    return root


def deploy(project: Path, name: str, pool: str, flow_name: str = "marked") -> str:
    from fleetflow.deployments import Deployment
    from fleetflow.entrypoints import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(f"flows.py:{flow_name}", project)
    return Deployment.build_from_flow(flow, name, path=str(project), work_pool_name=pool).apply()


def max_overlap(markers: Path) -> int:
    """Most executions of ``timed`` running at one moment, from their recorded intervals."""
    events = []
    for path in markers.iterdir():
        for line in path.read_text().split():
            _, start, end = line.split(",")
            events += [(float(start), 1), (float(end), -1)]
    peak = current = 0
    for _, delta in sorted(events):
        current += delta
        peak = max(peak, current)
    return peak


def create_runs(name: str, count: int, markers: Path, seconds: float = 0.3, prefix: str = "r") -> list[str]:
    from fleetflow.deployments import run_deployment

    markers.mkdir(parents=True, exist_ok=True)
    return [run_deployment(name, parameters={"key": f"{prefix}{i}", "marker_dir": str(markers), "seconds": seconds},
                           timeout=0, as_subflow=False).id for i in range(count)]


class WorkerProc:
    """``fleetflow worker start`` as a subprocess; ``faults`` arms FLEETFLOW_FAULT_POINTS."""

    def __init__(self, pool: str, *, name: str | None = None, faults: str = "", marker: Path | None = None,
                 extra_env: dict[str, str] | None = None):
        cmd = [sys.executable, "-m", "fleetflow", "worker", "start", "--pool", pool]
        if name:
            cmd += ["--name", name]
        env = {**os.environ, **CHAOS_ENV, **(extra_env or {})}
        if faults:
            env["FLEETFLOW_FAULT_POINTS"] = faults
        if marker:
            env["FLEETFLOW_FAULT_MARKER"] = str(marker)
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_exit(self, timeout: float = 60) -> int:
        """Its exit code; a worker still running after the (scaled) deadline fails the test with
        what it printed so far, not a bare TimeoutExpired."""
        from waiting import scaled

        try:
            return self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"worker pid {self.pid} still running after {scaled(timeout):.0f} s; "
                                 f"its stderr: {self.stderr_tail()}") from None

    def stderr_tail(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace")[-2000:]


def wait_until(predicate: Callable[[], Any], *, timeout: float = 60, what: str = "condition",
               seen: Callable[[], Any] | None = None) -> Any:
    """The suite's shared waiter (tests/waiting.py): a condition, a generous scaled deadline."""
    from waiting import wait_until as shared

    return shared(predicate, what, timeout=timeout, observe=seen)


def settle(client: Any, run_ids: Iterable[str], *, timeout: float = SETTLE_DEADLINE) -> tuple[list[Any], float]:
    """Wait until every run is final (or the deadline); returns the runs and seconds taken."""
    from waiting import scaled

    ids = list(run_ids)
    start = time.monotonic()
    deadline = start + scaled(timeout)
    runs = [client.read_flow_run(i) for i in ids]
    while time.monotonic() < deadline and not all(r.state and r.state.is_final for r in runs):
        time.sleep(0.1)
        runs = [client.read_flow_run(i) for i in ids]
    return runs, time.monotonic() - start


def executions(markers: Path, key: str) -> int:
    path = markers / key
    return len(path.read_text().split()) if path.exists() else 0


def count(scenario: str, backend: str, runs: list[Any], keys: list[str], markers: Path, settle_seconds: float,
          *, expect: str = "COMPLETED") -> Counts:
    """lost: final but not ``expect`` (or COMPLETED without running); twice: >1 execution;
    stuck: not final by the deadline."""
    stuck = [r for r in runs if not (r.state and r.state.is_final)]
    lost = [r for r, k in zip(runs, keys) if r.state and r.state.is_final
            and (r.state.type.value != expect or (expect == "COMPLETED" and executions(markers, k) == 0))]
    twice = [k for k in keys if executions(markers, k) > 1]
    detail = "; ".join(f"{r.id[:8]} {r.state.type.value if r.state else None}: {r.state.message if r.state else ''}"
                       for r in (stuck + lost)[:3])
    return Counts(scenario, backend, len(runs), len(lost), len(twice), len(stuck), round(settle_seconds, 2), detail)


def record(counts: Counts) -> None:
    """Append the row for the table printed at the end of the session (tests/chaos_table.py)."""
    chaos_table.record(counts.row())
    print(f"chaos: {counts.row()}")
