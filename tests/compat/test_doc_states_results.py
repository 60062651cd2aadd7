"""Adapted from Prefect 2 docs/concepts/states.md and docs/concepts/results.md ("Retrieving
results", "Handling failures", "Persisting results"), and state-change-hooks.md: only the
imports changed."""

import pytest

from fleetflow import flow, task
from fleetflow.filesystems import LocalFileSystem
from fleetflow.states import Completed


def test_getting_results_from_states(temp_store):
    @task
    def my_task():
        return 1

    @flow
    def my_flow():
        state = my_task(return_state=True)
        return state.result() + 1

    state = my_flow(return_state=True)
    assert state.result() == 2


def test_handling_failures(temp_store):
    @task
    def my_task():
        raise ValueError()

    @flow
    def my_flow():
        state = my_task(return_state=True)
        maybe_result = state.result(raise_on_failure=False)
        if isinstance(maybe_result, ValueError):
            print("Oh no! The task failed. Falling back to '1'.")
            result = 1
        else:
            result = maybe_result
        return result + 1

    assert my_flow() == 2


def test_futures_results(temp_store):
    @task
    def my_task():
        return 1

    @flow
    def my_flow():
        future = my_task.submit()
        return future.result() + 1

    assert my_flow() == 2


def test_persisting_results_to_storage(temp_store, tmp_path):
    storage = LocalFileSystem(basepath=str(tmp_path / "my-results"))

    @task(persist_result=True, result_storage=storage)
    def my_task():
        return {"big": list(range(3)), "obj": object.__name__, "set": {1, 2}}  # a set is not JSON

    @flow(persist_result=True)
    def my_flow():
        return my_task()

    value = my_flow()
    assert value["set"] == {1, 2}
    assert any(p.is_file() for p in (tmp_path / "my-results").rglob("*"))
    run = temp_store.read_flow_runs(flow_name="my-flow")[0]
    (tr,) = temp_store.read_task_runs(run.id)
    assert tr.state.result()["set"] == {1, 2}


def test_state_change_hooks(temp_store):
    messages = []

    def my_success_hook(task, task_run, state):
        messages.append(f"Task run succeeded with result {state.result()}")

    def my_failure_hook(flow, flow_run, state):
        messages.append(f"Flow run {flow_run.name} failed: {state.message}")

    @task(on_completion=[my_success_hook])
    def my_task():
        return 1

    @flow(on_failure=[my_failure_hook])
    def my_flow():
        my_task()
        raise ValueError("oops")

    with pytest.raises(ValueError):
        my_flow()
    run = temp_store.read_flow_runs(flow_name="my-flow")[0]
    assert messages == ["Task run succeeded with result 1", f"Flow run {run.name} failed: ValueError: oops"]


def test_manual_completed_state():
    assert Completed(message="done").is_completed() and str(Completed()) == "Completed()"
