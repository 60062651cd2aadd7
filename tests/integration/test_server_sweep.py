"""The server sweeps expired leases too: a script flow SIGKILLed while no worker, scheduler
or `flow-run reconcile` runs ends CRASHED, reconciled by `fleetflow server`'s own sweep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from fleetflow.orchestrator import Orchestrator
from fleetflow.server.serve import start_in_thread
from fleetflow.states import StateType
from waiting import wait_until

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from fleetflow import flow

    @flow
    def forgotten(marker: str):
        open(marker, "w").write("started")
        time.sleep(600)

    forgotten(sys.argv[1])
    """
)


def test_the_server_crashes_a_killed_script_flow(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEETFLOW_LEASE_SECONDS", "2")
    monkeypatch.setenv("FLEETFLOW_RECONCILE_INTERVAL", "0.5")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Orchestrator.create(url)
    server = start_in_thread(store, auth=False)
    try:
        (tmp_path / "script.py").write_text(SCRIPT)
        marker = tmp_path / "started"
        env = {**os.environ, "FLEETFLOW_DATABASE_URL": url}
        proc = subprocess.Popen([sys.executable, str(tmp_path / "script.py"), str(marker)], env=env)
        try:
            wait_until(marker.exists, "the script flow to start")
            [run] = store.read_flow_runs(flow_name="forgotten")
            assert run.state_type is StateType.RUNNING
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        final = wait_until(lambda: (r := store.read_flow_run(run.id)).state.is_final and r, "the server's sweep",
                           observe=lambda: store.read_flow_run(run.id).state)
        assert final.state.type is StateType.CRASHED
        assert "lease expired" in final.state.message
    finally:
        server.stop()
        store.dispose()
