"""Process launches forked from the worker's warm template (infrastructure/fork_server.py,
fork_template.py), through a real ``fleetflow worker start``: a forked run's process is what a
cold start would have been (own session, the run's environment, recorded as the handle), its
cancellation takes its whole process tree, a template that dies is replaced, and where forking
is switched off or cannot apply (a memory limit) the run starts fresh from the worker."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from fleetflow.cancellation import cancel_flow_run
from fleetflow.deployments import Deployment, ensure_work_pool, run_deployment
from fleetflow.runner import load_flow_from_entrypoint
from fleetflow.states import StateType
from waiting import wait_until
from worker_helpers import WorkerProcess, wait_final

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux-only")

FLOWS = textwrap.dedent(
    '''
    import os, subprocess, sys, time
    from fleetflow import flow
    from fleetflow.settings import get_settings

    @flow
    def whoami():
        return {"pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0), "argv": sys.argv[1:],
                "set": os.environ.get("FORK_TEST_SET"), "unset": os.environ.get("FORK_TEST_UNSET"),
                "run_id": os.environ.get("FLEETFLOW_FLOW_RUN_ID"), "level": get_settings().logging_level}

    @flow
    def tree(marker: str):
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(marker, "w") as fh:
            fh.write(f"{os.getpid()} {grandchild.pid}")
        time.sleep(600)

    @flow
    def wait_for_file(path: str):
        while not os.path.exists(path):
            time.sleep(0.05)
        return "done"
    '''
)


@pytest.fixture
def forks_project(tmp_path):
    root = tmp_path / "forks"
    root.mkdir()
    (root / "forks.py").write_text(FLOWS)
    return root


def _deploy(project: Path, fn: str, name: str, **kwargs) -> str:
    flow_ = load_flow_from_entrypoint(f"forks.py:{fn}", project)
    return Deployment.build_from_flow(flow_, name, path=str(project), work_pool_name="fork-pool", **kwargs).apply()


@pytest.fixture
def start_worker(temp_store, monkeypatch):
    started: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        ensure_work_pool(temp_store, "fork-pool")
        worker = WorkerProcess("fork-pool", f"fork-w{len(started)}")
        worker.wait_polling(temp_store, "fork-pool")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_forked_run_is_the_process_a_cold_start_would_be(temp_store, forks_project, start_worker, monkeypatch):
    monkeypatch.setenv("FORK_TEST_UNSET", "worker-value")  # the block unsets it for the run
    worker = start_worker()
    _deploy(forks_project, "whoami", "me", infra_overrides={"env": {"FORK_TEST_SET": "yes", "FORK_TEST_UNSET": None}})
    _deploy(forks_project, "whoami", "debug", infra_overrides={"env": {"FLEETFLOW_LOGGING_LEVEL": "DEBUG"}})
    run = run_deployment("whoami/me", as_subflow=False)
    seen = run.result()
    assert run.state.type is StateType.COMPLETED
    assert run.infrastructure_pid.split(":")[2] == str(seen["pid"])  # the handle names the run's own process
    assert seen["sid"] == seen["pid"]  # its own session and process group
    assert seen["ppid"] != worker.proc.pid and "--fork-server" in _cmdline(seen["ppid"])  # forked, not started
    assert seen["set"] == "yes" and seen["unset"] is None and seen["run_id"] == run.id
    assert seen["argv"] == [run.id]
    assert seen["level"] == "INFO"
    # A setting in the run's environment is read by the run (the template's settings are not reused).
    assert run_deployment("whoami/debug", as_subflow=False).result()["level"] == "DEBUG"


def test_cancelling_a_forked_run_stops_its_whole_process_tree(temp_store, forks_project, start_worker, tmp_path):
    start_worker()
    _deploy(forks_project, "tree", "t")
    marker = tmp_path / "tree-pids"
    run = run_deployment("tree/t", parameters={"marker": str(marker)}, timeout=0, as_subflow=False)
    wait_until(lambda: marker.exists() and len(marker.read_text().split()) == 2, "the run to start its grandchild")
    pid, grandchild = (int(p) for p in marker.read_text().split())
    assert "--fork-server" in _cmdline(_parent_of(pid))
    cancel_flow_run(temp_store, run.id)
    assert wait_final(temp_store, run.id).state.type is StateType.CANCELLED
    wait_until(lambda: _gone(pid) and _gone(grandchild), "the run and its grandchild to be gone",
               observe=lambda: (_cmdline(pid), _cmdline(grandchild)))


def test_a_template_that_dies_is_replaced_and_its_running_child_is_not_lost(
        temp_store, forks_project, start_worker, tmp_path):
    start_worker()
    _deploy(forks_project, "whoami", "me")
    _deploy(forks_project, "wait_for_file", "w")
    first_template = run_deployment("whoami/me", as_subflow=False).result()["ppid"]
    go = tmp_path / "go"
    waiting = run_deployment("wait-for-file/w", parameters={"path": str(go)}, timeout=0, as_subflow=False)
    wait_until(lambda: temp_store.read_flow_run(waiting.id).state_type is StateType.RUNNING, "the child to run")
    os.kill(first_template, signal.SIGKILL)
    wait_until(lambda: _gone(first_template), "the template to die")
    second = run_deployment("whoami/me", as_subflow=False).result()
    assert second["ppid"] != first_template and "--fork-server" in _cmdline(second["ppid"])
    go.write_text("now")  # the child forked by the dead template finishes on its own
    finished = wait_final(temp_store, waiting.id)
    assert finished.state.type is StateType.COMPLETED, finished.state.message


def test_with_forking_off_or_a_memory_limit_the_run_starts_from_the_worker(temp_store, forks_project, start_worker):
    worker = start_worker(FLEETFLOW_PROCESS_FORK_SERVER="false")
    _deploy(forks_project, "whoami", "me")
    assert run_deployment("whoami/me", as_subflow=False).result()["ppid"] == worker.proc.pid
    worker.stop()
    forking = start_worker(FLEETFLOW_PROCESS_FORK_SERVER="true")
    _deploy(forks_project, "whoami", "limited", infra_overrides={"memory": 1024})
    assert run_deployment("whoami/limited", as_subflow=False).result()["ppid"] == forking.proc.pid
