"""Infrastructure retries end to end on a real worker and real processes, and `flow-run retry`."""

from __future__ import annotations

import textwrap

from typer.testing import CliRunner

from fleetflow.cli import app
from fleetflow.deployments import Deployment, ensure_work_pool, run_deployment
from fleetflow.entrypoints import load_flow_from_entrypoint
from fleetflow.states import StateType
from worker_helpers import WorkerProcess, wait_final

FLOWS = textwrap.dedent(
    '''
    import os
    from fleetflow import flow

    @flow
    def flaky_exit(marker: str):
        """Dies hard (no final state) on its first execution, succeeds on the next."""
        first = not os.path.exists(marker)
        with open(marker, "a") as fh:
            fh.write("x\\n")
        if first:
            os._exit(3)
        return "second time lucky"

    @flow
    def fails_once(marker: str):
        first = not os.path.exists(marker)
        with open(marker, "a") as fh:
            fh.write("x\\n")
        if first:
            raise ValueError("first attempt fails")
        return "fixed"
    '''
)


def _deploy(root, fn: str, **kwargs) -> None:
    root.mkdir(exist_ok=True)
    (root / "flows.py").write_text(FLOWS)
    flow = load_flow_from_entrypoint(f"flows.py:{fn}", root)
    Deployment.build_from_flow(flow, "d", path=str(root), work_pool_name="retrying", **kwargs).apply()


def test_exit_code_relaunched_when_opted_in(temp_store, tmp_path):
    ensure_work_pool(temp_store, "retrying")
    _deploy(tmp_path / "p", "flaky_exit", retries=1, retry_on=["exit_code"])
    worker = WorkerProcess("retrying")
    try:
        run = run_deployment("flaky-exit/d", parameters={"marker": str(tmp_path / "m")}, timeout=120, as_subflow=False)
    finally:
        worker.stop()
    assert run.state.type is StateType.COMPLETED and run.result() == "second time lucky"
    history = [(s.type, s.name) for s in temp_store.read_flow_run_states(run.id)]
    assert (StateType.SCHEDULED, "AwaitingRelaunch") in history
    assert [t for t, _ in history].count(StateType.RUNNING) == 2 and run.launch_attempt == 2
    relaunch = next(s for s in temp_store.read_flow_run_states(run.id) if s.name == "AwaitingRelaunch")
    assert "exit_code" in relaunch.message and "exited with code 3" in relaunch.message


def test_exit_code_not_relaunched_without_opt_in(temp_store, tmp_path):
    ensure_work_pool(temp_store, "retrying")
    _deploy(tmp_path / "p", "flaky_exit", retries=3)
    worker = WorkerProcess("retrying")
    try:
        run = run_deployment("flaky-exit/d", parameters={"marker": str(tmp_path / "m")}, timeout=0, as_subflow=False)
        final = wait_final(temp_store, run.id, timeout=120)
    finally:
        worker.stop()
    assert final.state.type is StateType.CRASHED and "exited with code 3" in final.state.message
    assert (tmp_path / "m").read_text().split() == ["x"]


def test_flow_run_retry_relaunches_a_final_run(temp_store, tmp_path):
    ensure_work_pool(temp_store, "retrying")
    _deploy(tmp_path / "p", "fails_once")
    worker = WorkerProcess("retrying")
    try:
        run = run_deployment("fails-once/d", parameters={"marker": str(tmp_path / "m")}, timeout=0, as_subflow=False)
        assert wait_final(temp_store, run.id, timeout=120).state.type is StateType.FAILED
        out = CliRunner().invoke(app, ["flow-run", "retry", run.id])
        assert out.exit_code == 0, out.output
        assert "SCHEDULED again" in out.output
        final = wait_final(temp_store, run.id, timeout=120)
    finally:
        worker.stop()
    assert final.state.type is StateType.COMPLETED and final.result() == "fixed"
    types = [s.type for s in temp_store.read_flow_run_states(run.id)]
    assert types.count(StateType.FAILED) == 1 and types[-1] is StateType.COMPLETED


def test_flow_run_retry_refuses_a_running_or_script_run(temp_store):
    from fleetflow.states import Running

    script = temp_store.create_flow_run("script", state=Running())
    out = CliRunner().invoke(app, ["flow-run", "retry", script.id])
    assert out.exit_code != 0 and "did not come from a deployment" in out.output
