"""Tasks: retries, delays, timeouts, futures, map, caching, logs."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from fleetflow import flow, get_run_logger, task, task_input_hash, unmapped
from fleetflow.engine.retries import exponential_backoff, retry_delay
from fleetflow.exceptions import RunTimeout
from fleetflow.states import StateType


def test_task_retries_record_awaiting_retry(temp_store):
    attempts = []

    @task(retries=2, retry_delay_seconds=[0, 0])
    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "done"

    @flow
    def f():
        return flaky()

    assert f() == "done"
    run = temp_store.read_flow_runs(flow_name="f")[0]
    (tr,) = temp_store.read_task_runs(run.id)
    names = [s.name for s in temp_store.read_task_run_states(tr.id)]
    assert names == ["Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "Completed"]
    assert tr.run_count == 3


def test_task_retries_exhausted_fail(temp_store):
    @task(retries=1)
    def always():
        raise KeyError("nope")

    @flow
    def g():
        always()

    with pytest.raises(KeyError):
        g()


def test_retry_delay_forms():
    assert retry_delay(3, 1) == 3.0
    assert [retry_delay([1, 2, 4], n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 4.0]
    backoff = exponential_backoff(2)
    assert [retry_delay(backoff, n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    jittered = {round(retry_delay(backoff, 3, jitter_factor=0.5), 6) for _ in range(20)}
    assert all(4.0 <= d <= 12.0 for d in jittered) and len(jittered) > 1


def test_task_timeout(temp_store):
    import time

    @task(timeout_seconds=0.2)
    def slow():
        time.sleep(2)

    @flow
    def h():
        slow()

    with pytest.raises(RunTimeout):
        h()
    run = temp_store.read_flow_runs(flow_name="h")[0]
    (tr,) = temp_store.read_task_runs(run.id)
    assert tr.state.type is StateType.FAILED and "timeout" in tr.state.message


def test_submit_runs_concurrently_and_futures_resolve(temp_store):
    barrier = threading.Barrier(4, timeout=120)

    @task
    def meet(i):
        barrier.wait()  # only returns when 4 calls run at the same time
        return i

    @task
    def total(values):
        return sum(values)

    @flow
    def fan():
        futures = [meet.submit(i) for i in range(4)]
        return total(futures)

    assert fan() == 6


def test_future_state_wait_and_failure(temp_store):
    @task
    def bad():
        raise RuntimeError("x")

    @flow
    def k():
        fut = bad.submit()
        state = fut.wait()
        assert state.type is StateType.FAILED
        assert isinstance(fut.result(raise_on_failure=False), RuntimeError)
        return 1

    assert k() == 1


def test_flow_fails_when_submitted_task_failed_and_nothing_returned(temp_store):
    @task
    def bad():
        raise RuntimeError("x")

    @flow
    def quiet():
        bad.submit()

    with pytest.raises(RuntimeError, match="x"):  # Prefect raises the failed task's exception
        quiet()
    state = temp_store.read_flow_runs(flow_name="quiet")[0].state
    assert state.type is StateType.FAILED and state.message == "1/1 states failed."


def test_map_with_unmapped(temp_store):
    @task
    def scale(x, factor):
        return x * factor

    @flow
    def m():
        return [f.result() for f in scale.map([1, 2, 3], unmapped(10))]

    assert m() == [10, 20, 30]
    run = temp_store.read_flow_runs(flow_name="m")[0]
    assert sorted(tr.dynamic_key for tr in temp_store.read_task_runs(run.id)) == ["0", "1", "2"]


def test_cached_task_does_not_run_again(temp_store):
    calls = []

    @task(cache_key_fn=task_input_hash, cache_expiration=dt.timedelta(hours=1))
    def expensive(x):
        calls.append(x)
        return x * 2

    @flow
    def c():
        return [expensive(1), expensive(1), expensive(2)]

    assert c() == [2, 2, 4]
    assert c() == [2, 2, 4]
    assert calls == [1, 2]
    run = temp_store.read_flow_runs(flow_name="c")[0]
    assert {tr.state.name for tr in temp_store.read_task_runs(run.id)} == {"Cached"}


def test_cache_expiration(temp_store):
    calls = []

    @task(cache_key_fn=task_input_hash, cache_expiration=dt.timedelta(seconds=-1))
    def stale(x):
        calls.append(x)
        return x

    @flow
    def e():
        return stale(1) + stale(1)

    e()
    assert calls == [1, 1]


def test_logs_and_prints_are_stored(temp_store):
    @task(log_prints=True)
    def talk():
        print("hello from print")
        get_run_logger().warning("careful")

    @flow
    def chatty():
        get_run_logger().info("starting")
        talk()

    chatty()
    run = temp_store.read_flow_runs(flow_name="chatty")[0]
    logs = temp_store.read_logs(flow_run_id=run.id)
    messages = [l.message for l in logs]
    assert "starting" in messages and "hello from print" in messages and "careful" in messages
    tr = temp_store.read_task_runs(run.id)[0]
    assert {l.task_run_id for l in logs if l.message == "careful"} == {tr.id}
    assert [l.level for l in logs if l.message == "careful"] == [30]


def test_print_without_log_prints_is_not_stored(temp_store, capsys):
    @flow
    def plain():
        print("just stdout")

    plain()
    run = temp_store.read_flow_runs(flow_name="plain")[0]
    assert all("just stdout" not in r.message for r in temp_store.read_logs(flow_run_id=run.id))
    assert "just stdout" in capsys.readouterr().out


def test_task_outside_flow_raises_prefects_error_and_fn_is_the_plain_function():
    from fleetflow.exceptions import TaskOutsideFlowError

    @task
    def inc(x):
        return x + 1

    with pytest.raises(RuntimeError, match="Tasks cannot be run outside of a flow") as info:
        inc(1)
    assert isinstance(info.value, TaskOutsideFlowError) and "inc.fn()" in str(info.value)
    assert inc.fn(1) == 2
