"""Shared pieces for worker/deployment tests: a small flows project and worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from waiting import wait_until

FLOWS = textwrap.dedent(
    '''
    import os, time
    from fleetflow import flow, get_run_logger

    @flow
    def echo(x: int = 1):
        get_run_logger().info(f"echo {x} in {os.getpid()}")
        return {"x": x, "pid": os.getpid()}

    @flow
    def fail():
        raise ValueError("child failed on purpose")

    @flow
    def sleepy(seconds: float = 2.0, marker: str = ""):
        if marker:
            open(marker, "a").write(f"{os.getpid()}\\n")
        time.sleep(seconds)
        return seconds

    @flow
    def hog(mib: int = 512):
        block = bytearray(mib * 1024 * 1024)
        return len(block)

    @flow
    def exit_hard(code: int = 3):
        os._exit(code)
    '''
)


def make_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "flows.py").write_text(FLOWS)
    return root


def load(project: Path, name: str) -> Any:
    from fleetflow.runner import load_flow_from_entrypoint

    return load_flow_from_entrypoint(f"flows.py:{name}", project)


def deploy(project: Path, flow_fn: str, name: str, pool: str = "test-pool", **kwargs: Any) -> str:
    from fleetflow.deployments import Deployment

    return Deployment.build_from_flow(load(project, flow_fn), name, path=str(project), work_pool_name=pool, **kwargs).apply()


class WorkerProcess:
    """``fleetflow worker start`` as a real subprocess, stopped by the test."""

    def __init__(self, pool: str, name: str | None = None, *extra: str):
        cmd = [sys.executable, "-m", "fleetflow", "worker", "start", "--pool", pool]
        if name:
            cmd += ["--name", name]
        self.proc = subprocess.Popen([*cmd, *extra], env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_polling(self, client: Any, pool: str, timeout: float = 60) -> None:
        def polled() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited: {self.proc.stderr.read().decode()[-2000:]}")
            return client.read_work_pool(pool).last_polled is not None

        wait_until(polled, f"the worker to poll {pool!r}", timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_final(client: Any, run_id: str, timeout: float = 90) -> Any:
    """The run once it is final (generous, scaled deadline; the failure shows its last state)."""

    def final() -> Any:
        run = client.read_flow_run(run_id)
        return run if run.state and run.state.is_final else None

    return wait_until(final, f"run {run_id} to be final", timeout=timeout, observe=lambda: client.read_flow_run(run_id).state)


def wait_for(predicate: Any, timeout: float = 60, what: str = "condition") -> Any:
    return wait_until(predicate, what, timeout=timeout)
