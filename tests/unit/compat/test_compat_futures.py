"""Area 3: wait_for=, return_state=True, allow_failure, future.get_state()/wait()/result(),
futures and states returned from flows."""

from __future__ import annotations

import pytest

from fleetflow import allow_failure, flow, task
from fleetflow.exceptions import UpstreamTaskError
from fleetflow.futures import PrefectFuture, TaskFuture
from fleetflow.states import Completed, Failed, State, StateType


@task
def double(x):
    return 2 * x


@task
def fail(msg="boom"):
    raise ValueError(msg)


def test_prefect_future_alias():
    assert PrefectFuture is TaskFuture


def test_seed_002_pattern_get_state_is_failed(temp_store):
    @flow
    def f():
        ok, bad = double.submit(2), fail.submit()
        return ok.get_state().is_completed(), bad.get_state().is_failed(), bad.wait(timeout=60).is_failed()

    # get_state() right after submit() reflects the run so far; wait() gives the final state.
    ok_done, _, bad_failed = f()
    assert bad_failed is True and isinstance(ok_done, bool)


def test_future_wait_timeout_and_result_options(temp_store):
    import threading

    release = threading.Event()

    @task
    def blocked():
        release.wait(60)
        return "released"

    @flow
    def f():
        fut = blocked.submit()
        assert fut.wait(timeout=0.01) is None  # not done yet
        with pytest.raises(TimeoutError):
            fut.result(timeout=0.01)
        release.set()
        state = fut.wait()
        return state.type, fut.result(timeout=60), fail.submit().result(raise_on_failure=False)

    state_type, value, exc = f()
    assert state_type is StateType.COMPLETED and value == "released" and isinstance(exc, ValueError)


def test_return_state_on_task_calls_submit_and_map(temp_store):
    @flow
    def f():
        s1 = double(3, return_state=True)
        s2 = fail(return_state=True)
        s3 = double.submit(4, return_state=True)
        states = double.map([1, 2], return_state=True)
        return (s1.result(), s2.is_failed(), type(s2.result(raise_on_failure=False)).__name__, s3.result(),
                [s.result() for s in states], isinstance(s1, State))

    assert f() == (6, True, "ValueError", 8, [2, 4], True)


def test_return_state_on_flow_calls(temp_store):
    @flow
    def bad():
        raise RuntimeError("flow broke")

    state = bad(return_state=True)
    assert state.is_failed() and "flow broke" in state.message
    with pytest.raises(RuntimeError, match="flow broke"):
        state.result()
    assert isinstance(state.result(raise_on_failure=False), RuntimeError)


def test_wait_for_orders_and_upstream_failure_blocks_unless_allowed(temp_store):
    order = []

    @task
    def first():
        order.append("first")

    @task
    def second(label):
        order.append(label)
        return "ran"

    @flow
    def f():
        a = first.submit()
        b = second.submit("after first", wait_for=[a])
        bad = fail.submit()
        blocked = second.submit("after bad", wait_for=[bad])
        allowed = second.submit("allowed", wait_for=[allow_failure(bad)])  # may run before ``first``
        blocked_state = blocked.wait()
        return b.result(), blocked_state.name, allowed.result(), type(blocked.result(raise_on_failure=False))

    b_value, blocked_name, allowed_value, blocked_exc = f()  # returned a value: completes despite failures
    assert order.index("first") < order.index("after first") and "after bad" not in order
    assert (b_value, blocked_name, allowed_value, blocked_exc) == ("ran", "NotReady", "ran", UpstreamTaskError)


def test_allow_failure_as_an_argument_passes_the_exception(temp_store):
    @task
    def inspect_arg(x):
        return type(x).__name__

    @flow
    def f():
        return inspect_arg(allow_failure(fail.submit("upstream")))

    assert f() == "ValueError"


def test_flow_returning_futures_resolves_them(temp_store):
    @flow
    def f():
        futs = double.map([1, 2, 3])
        return {"first": futs[0], "all": futs}  # futures inside a dict hold a thread lock: never pickled

    assert f() == {"first": 2, "all": [2, 4, 6]}
    run = temp_store.read_flow_runs(flow_name="f")[0]
    assert run.state.result() == {"first": 2, "all": [2, 4, 6]}


def test_flow_returning_a_future_takes_its_state(temp_store):
    @flow
    def f():
        return fail.submit("from future")

    with pytest.raises(ValueError, match="from future"):
        f()
    assert temp_store.read_flow_runs(flow_name="f")[0].state.is_failed()


def test_flow_returning_states_takes_final_state_from_them(temp_store):
    @flow
    def all_ok():
        return [Completed(), double(1, return_state=True)]

    @flow
    def one_bad():
        return [double(1, return_state=True), fail(return_state=True), Completed()]

    @flow
    def single():
        return Failed(message="decided to fail")

    assert all_ok() == [None, 2]
    state = one_bad(return_state=True)
    assert state.is_failed() and state.message == "1/3 states failed."
    with pytest.raises(ValueError, match="boom"):
        state.result()
    stored = temp_store.read_flow_runs(flow_name="one-bad")[0].state
    assert stored.message == "1/3 states failed."
    assert single(return_state=True).message == "decided to fail"
    assert temp_store.read_flow_runs(flow_name="single")[0].state.type is StateType.FAILED


def test_flow_wait_for_and_subflow_return_state(temp_store):
    @flow
    def child(x):
        return x + 1

    @flow
    def parent():
        a = double.submit(1)
        return child(1, wait_for=[a]), child(5, return_state=True).result()

    assert parent() == (2, 6)
