"""Flows and sub-flows: states, parameters, results, failures, retries, signals.

Runs against SQLite and PostgreSQL through the ``temp_store`` fixture.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from fleetflow import flow, task
from fleetflow.exceptions import ParameterValidationError, RunFailed, RunTimeout
from fleetflow.states import StateType
from waiting import wait_until


def _types(history):
    return [s.type for s in history]


def test_flow_call_returns_value_and_records_history(temp_store):
    @flow
    def add(x: int, y: int = 1):
        return x + y

    assert add(2, y=5) == 7
    run = temp_store.read_flow_runs(flow_name="add")[0]
    assert run.parameters == {"x": 2, "y": 5}
    history = temp_store.read_flow_run_states(run.id)
    assert _types(history) == [StateType.PENDING, StateType.RUNNING, StateType.COMPLETED]
    assert [s.timestamp for s in history] == sorted(s.timestamp for s in history)
    assert run.state.type is StateType.COMPLETED and run.result() == 7
    assert run.start_time and run.end_time and run.end_time >= run.start_time


def test_subflow_is_linked_to_parent(temp_store):
    @flow
    def child(n: int):
        return n * 10

    @flow
    def parent():
        return child(4) + child(5)

    assert parent() == 90
    parent_run = temp_store.read_flow_runs(flow_name="parent")[0]
    children = temp_store.read_flow_runs(parent_flow_run_id=parent_run.id)
    assert sorted(c.result() for c in children) == [40, 50]
    task_runs = temp_store.read_task_runs(parent_run.id)
    assert {tr.id for tr in task_runs} == {c.parent_task_run_id for c in children}
    assert all(tr.state.type is StateType.COMPLETED for tr in task_runs)
    assert sorted(tr.dynamic_key for tr in task_runs) == ["0", "1"]


def test_parameters_are_coerced_by_type_hints(temp_store):
    @flow
    def typed(n: int, ratio: float = 0.5):
        return (n, ratio)

    assert typed("3", ratio="0.25") == (3, 0.25)


def test_bad_parameter_fails_run_naming_the_parameter(temp_store):
    @flow
    def typed(n: int):
        return n

    with pytest.raises(ParameterValidationError) as err:
        typed("not-a-number")
    assert "'n'" in str(err.value) and err.value.field == "n"
    run = temp_store.read_flow_runs(flow_name="typed")[0]
    assert run.state.type is StateType.FAILED
    assert "'n'" in run.state.message


def test_exception_propagates_and_is_recorded(temp_store):
    @task
    def boom():
        raise ValueError("bad input 42")

    @flow
    def fails():
        boom()

    with pytest.raises(ValueError, match="bad input 42"):
        fails()
    run = temp_store.read_flow_runs(flow_name="fails")[0]
    assert run.state.type is StateType.FAILED
    exc = run.state.data["exception"]
    assert exc["type"] == "builtins.ValueError" and exc["message"] == "bad input 42"
    assert "raise ValueError" in exc["traceback"]
    (tr,) = temp_store.read_task_runs(run.id)
    assert tr.state.type is StateType.FAILED and "bad input 42" in tr.state.message
    with pytest.raises(RunFailed):
        run.result()
    assert isinstance(run.result(raise_on_failure=False), RunFailed)


def test_flow_retries_then_succeeds(temp_store):
    calls = []

    @flow(retries=2, retry_delay_seconds=0)
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("transient")
        return "ok"

    assert flaky() == "ok"
    run = temp_store.read_flow_runs(flow_name="flaky")[0]
    names = [s.name for s in temp_store.read_flow_run_states(run.id)]
    assert names.count("AwaitingRetry") == 2 and names.count("Retrying") == 2
    assert run.run_count == 3


def test_flow_timeout_fails_the_run(temp_store):
    @flow(timeout_seconds=0.2)
    def slow():
        time.sleep(3)

    with pytest.raises(RunTimeout):
        slow()
    run = temp_store.read_flow_runs(flow_name="slow")[0]
    assert run.state.type is StateType.FAILED and "timeout_seconds=0.2" in run.state.message


def test_non_json_result_is_pickled_and_readable(temp_store):
    @flow
    def make():
        return {1: {"a", "b"}, "t": (1, 2)}

    value = make()
    run = temp_store.read_flow_runs(flow_name="make")[0]
    assert run.state.data["result"]["serializer"] == "pickle"
    assert run.result() == value


def test_result_readable_from_another_process(temp_store):
    @flow
    def answer():
        return {"answer": 42}

    answer()
    run = temp_store.read_flow_runs(flow_name="answer")[0]
    code = f"from fleetflow import get_client; print(get_client().read_flow_run({run.id!r}).result()['answer'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(), timeout=60)
    assert out.stdout.strip() == "42", out.stderr


def test_async_flow_with_async_tasks(temp_store):
    import asyncio

    @task
    async def double(x):
        await asyncio.sleep(0.01)
        return 2 * x

    @flow
    async def aflow(n: int):
        first = await double(n)
        futures = [double.submit(i) for i in range(3)]
        rest = [await f for f in futures]
        return first + sum(rest)

    assert asyncio.run(aflow(5)) == 10 + 6
    run = temp_store.read_flow_runs(flow_name="aflow")[0]
    assert run.state.type is StateType.COMPLETED
    assert len(temp_store.read_task_runs(run.id)) == 4


_SIGNAL_SCRIPT = textwrap.dedent(
    """
    import signal, sys, time
    from fleetflow import flow, task

    # Ctrl-C as at a terminal: a suite started as a background job (no job control) hands
    # its children SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    @task
    def wait_forever():
        print("ready", flush=True)
        time.sleep(60)

    @flow
    def victim():
        wait_forever()

    victim()
    """
)


@pytest.mark.parametrize("sig, expected", [(signal.SIGTERM, StateType.CRASHED), (signal.SIGINT, StateType.CANCELLED)])
def test_signals_never_leave_a_run_running(temp_store, tmp_path, sig, expected):
    script = tmp_path / "victim.py"
    script.write_text(_SIGNAL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:  # never outlive the test
            proc.kill()
            proc.wait()
    run = temp_store.read_flow_runs(flow_name="victim")[0]
    assert run.state.type is expected, run.state
    (tr,) = temp_store.read_task_runs(run.id)
    assert tr.state.type is expected


def test_a_flow_returning_none_counts_every_task_call_in_its_final_state(temp_store):
    @task
    def ok(i):
        return i

    @task
    def bad():
        raise ValueError("bad call")

    @flow
    def mixed():
        ok(1)
        try:
            bad()
        except ValueError:
            pass
        ok(2)
        ok.submit(3)

    state = mixed(return_state=True)
    assert state.is_failed() and state.message == "1/4 states failed."
    with pytest.raises(ValueError, match="bad call"):
        state.result()
    assert temp_store.read_flow_runs(flow_name="mixed")[0].state.message == "1/4 states failed."


def test_a_completed_task_calls_result_is_not_kept_alive_by_its_flow(temp_store):
    """A flow calling many tasks holds each result only as long as the user does (and its
    record is being written)."""
    import gc
    import weakref

    @task
    def make():
        return BigResult()

    seen = {}

    def released() -> bool:
        gc.collect()
        return seen["ref"]() is None

    @flow
    def many():
        value = make()
        seen["ref"] = weakref.ref(value)
        del value
        # The group-commit buffer holds the final state until its record is written (within
        # the commit window); after that nothing of the flow's may keep the value.
        wait_until(released, "the task's result to be garbage collected inside the flow")
        return 1

    assert many() == 1


class BigResult:
    """A task result a test can hold a weak reference to (module level, so it pickles)."""
