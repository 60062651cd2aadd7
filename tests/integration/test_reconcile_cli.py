"""`fleetflow flow-run reconcile` sweeps a store nobody watches: a killed script flow ends
CRASHED with when it was last seen (it used to stay RUNNING forever)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from typer.testing import CliRunner

from fleetflow.cli import app
from fleetflow.states import StateType
from waiting import wait_until

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from fleetflow import flow

    @flow
    def forever(marker: str):
        open(marker, "w").write("started")
        time.sleep(600)

    forever(sys.argv[1])
    """
)


def test_reconcile_crashes_a_killed_script_flow(temp_store, tmp_path, monkeypatch):
    monkeypatch.setenv("FLEETFLOW_LEASE_SECONDS", "2")
    (tmp_path / "script.py").write_text(SCRIPT)
    marker = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, str(tmp_path / "script.py"), str(marker)], env=os.environ.copy())
    try:
        wait_until(marker.exists, "the script flow to start")
        [run] = temp_store.read_flow_runs(flow_name="forever")
        assert run.state_type is StateType.RUNNING and run.lease_owner.startswith("process:")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def reconciled():
        out = CliRunner().invoke(app, ["flow-run", "reconcile"])
        assert out.exit_code == 0, out.output
        return temp_store.read_flow_run(run.id).state.is_final

    wait_until(reconciled, "reconcile to crash the run", observe=lambda: temp_store.read_flow_run(run.id).state)
    final = temp_store.read_flow_run(run.id)
    assert final.state.type is StateType.CRASHED
    assert "lease expired and the infrastructure is gone" in final.state.message and "last heartbeat" in final.state.message
    out = CliRunner().invoke(app, ["flow-run", "reconcile"])
    assert out.exit_code == 0 and "nothing to reconcile" in out.output
