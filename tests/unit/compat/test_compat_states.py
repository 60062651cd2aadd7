"""Area 4: fleetflow.states offers Prefect's constructors, is_*() helpers, names/messages
(Cached, TimedOut, 'n/m states failed.') and State.result() in any process."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from fleetflow import flow, task
from fleetflow import states
from fleetflow.exceptions import MissingResult, RunFailed, RunTimeout


def test_constructors_and_predicates():
    cases = {
        "Completed": "is_completed", "Failed": "is_failed", "Cancelled": "is_cancelled", "Crashed": "is_crashed",
        "Pending": "is_pending", "Scheduled": "is_scheduled", "Running": "is_running", "Paused": "is_paused",
    }
    for ctor, predicate in cases.items():
        state = getattr(states, ctor)(message="m")
        assert state.name == ctor and getattr(state, predicate)() is True, ctor
    assert states.Crashed().is_failed()  # a crash is a failure, as before
    assert not states.Completed().is_failed()
    assert str(states.Completed()) == "Completed()"
    assert str(states.Failed(message="1/3 states failed.")) == "Failed('1/3 states failed.')"


def test_aggregate_messages():
    s = states
    assert s.aggregate_states([s.Completed(), s.Failed(), s.Completed()]).message == "1/3 states failed."
    assert s.aggregate_states([s.Completed(), s.Completed()]).message == "All states completed."
    assert s.is_state_iterable([s.Completed()]) and not s.is_state_iterable([s.Completed(), 1])


def test_cached_state_name(temp_store):
    @task(cache_key_fn=lambda ctx, p: "k", cache_expiration=dt.timedelta(hours=1))
    def value():
        return 42

    @flow
    def f():
        return value(return_state=True)

    first, second = f(return_state=True), f(return_state=True)
    run = temp_store.read_flow_runs(flow_name="f")[0]
    (tr,) = temp_store.read_task_runs(run.id)
    assert tr.state.name == "Cached" and tr.state.is_completed() and tr.state.result() == 42
    assert first.result() == second.result() == 42


def test_timed_out_state(temp_store):
    import threading

    stop = threading.Event()

    @task(timeout_seconds=0.1)
    def slow():
        stop.wait(30)

    @flow
    def f():
        return slow(return_state=True)

    try:
        state = f(return_state=True)
    finally:
        stop.set()
    assert state.is_failed()
    run = temp_store.read_flow_runs(flow_name="f")[0]
    (tr,) = temp_store.read_task_runs(run.id)
    assert tr.state.name == "TimedOut" and tr.state.message.startswith("Task run exceeded timeout of 0.1 seconds")
    with pytest.raises(RunTimeout):
        tr.state.result()


def test_result_raise_on_failure_false_and_not_final(temp_store):
    @flow
    def bad():
        raise KeyError("missing")

    with pytest.raises(KeyError):
        bad()
    stored = temp_store.read_flow_runs(flow_name="bad")[0].state
    exc = stored.result(raise_on_failure=False)  # rebuilt from the store: a builtin type comes back as itself
    assert isinstance(exc, KeyError)
    with pytest.raises(MissingResult, match="no result yet"):
        states.Running().result()
    custom = states.Failed(message="custom", data={"exception": {"type": "mymodule.MyError", "message": "x"}})
    assert isinstance(custom.result(raise_on_failure=False), RunFailed)


def test_state_result_in_another_process(temp_store, store_url):
    @flow
    def produce():
        return {"rows": 3, "when": dt.date(2024, 1, 2)}  # not JSON: pickled to result storage

    produce()
    run_id = temp_store.read_flow_runs(flow_name="produce")[0].id
    code = ("from fleetflow.client import get_client; import sys; "
            f"print(get_client().read_flow_run({run_id!r}).state.result())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'rows': 3, 'when': datetime.date(2024, 1, 2)}"
