"""Area 8: pause_flow_run waits in-process until resumed (from another process) or times out."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from fleetflow import flow, pause_flow_run, resume_flow_run
from fleetflow.exceptions import InvalidStateTransition, PausedRunTimeout
from fleetflow.states import StateType
from waiting import wait_until


def _run_in_thread(fn):
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def test_pause_then_resume_from_another_process(temp_store):
    steps = []

    @flow
    def approval():
        steps.append("before")
        pause_flow_run(timeout=120)
        steps.append("after")
        return "approved"

    thread, box = _run_in_thread(approval)
    run = wait_until(lambda: next((r for r in temp_store.read_flow_runs(flow_name="approval")
                                   if r.state_type is StateType.PAUSED), None), "the run to be PAUSED")
    assert steps == ["before"]
    out = subprocess.run([sys.executable, "-m", "fleetflow", "flow-run", "resume", run.id[:8]],
                         capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert out.returncode == 0, out.stderr
    thread.join(120)
    assert box == {"value": "approved"} and steps == ["before", "after"]
    names = [s.name for s in temp_store.read_flow_run_states(run.id)]
    assert names[-3:] == ["Paused", "Resuming", "Completed"]
    assert temp_store.read_flow_run(run.id).state_type is StateType.COMPLETED
    assert any("Pausing flow" in r.message for r in temp_store.read_logs(flow_run_id=run.id))


def test_pause_timeout_fails_the_run(temp_store):
    @flow
    def waits():
        pause_flow_run(timeout=0.2, poll_interval=0.05)
        return "never"

    with pytest.raises(PausedRunTimeout, match="never resumed"):
        waits()
    state = temp_store.read_flow_runs(flow_name="waits")[0].state
    assert state.type is StateType.FAILED and "paused and never resumed" in state.message


def test_resume_refuses_runs_that_are_not_paused(temp_store):
    @flow
    def done():
        return 1

    done()
    run = temp_store.read_flow_runs(flow_name="done")[0]
    with pytest.raises(InvalidStateTransition, match="not PAUSED"):
        resume_flow_run(run.id)


def test_pause_outside_a_flow_is_refused():
    from fleetflow.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="flow's body"):
        pause_flow_run(timeout=1)
