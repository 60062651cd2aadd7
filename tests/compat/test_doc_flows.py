"""Adapted from Prefect 2 docs/concepts/flows.md ("Flow run names", "Parameters",
"Final state determination", "Subflows"): only the imports changed (prefect -> fleetflow),
plus `.submit()`/`return_state=True` where the page predates 2.10's direct-call results."""

from __future__ import annotations

import datetime

import pytest

from fleetflow import flow, task
from fleetflow.states import Completed, Failed


def test_flow_run_name_template(temp_store):
    @flow(flow_run_name="{name}-on-{date:%A}")
    def my_flow(name: str, date: datetime.datetime):
        pass

    my_flow(name="marvin", date=datetime.datetime(2023, 4, 14))  # a Friday
    assert temp_store.read_flow_runs(flow_name="my-flow")[0].name == "marvin-on-Friday"


def test_flow_run_name_function(temp_store):
    def generate_flow_run_name():
        date = datetime.datetime(2023, 1, 1)
        return f"{date:%A}-is-a-nice-day"

    @flow(flow_run_name=generate_flow_run_name)
    def my_flow(name: str):
        pass

    my_flow(name="marvin")
    assert temp_store.read_flow_runs(flow_name="my-flow")[0].name == "Sunday-is-a-nice-day"


def test_parameters_are_coerced_from_type_hints(temp_store, capsys):
    @flow
    def what_day_is_it(date: datetime.datetime = None):
        if date is None:
            date = datetime.datetime.utcnow()
        print(f"It was {date.strftime('%A')} on {date.isoformat()}")

    what_day_is_it("2021-01-01T02:00:19.180906")
    assert "It was Friday on 2021-01-01T02:00:19.180906" in capsys.readouterr().out


@task
def always_fails_task():
    raise ValueError("I am bad task")


@task
def always_succeeds_task():
    return "foo"


def test_raise_an_exception(temp_store):
    @flow
    def always_fail_flow():
        raise ValueError("This flow immediately fails")

    with pytest.raises(ValueError, match="This flow immediately fails"):
        always_fail_flow()
    assert temp_store.read_flow_runs(flow_name="always-fail-flow")[0].state.is_failed()


def test_return_none(temp_store):
    @flow
    def always_fails_flow():
        always_fails_task.submit()
        always_succeeds_task.submit()

    state = always_fails_flow(return_state=True)
    assert state.is_failed() and state.message == "1/2 states failed."


def test_return_a_future(temp_store):
    @flow
    def always_succeeds_flow():
        x = always_fails_task.submit()
        y = always_succeeds_task.submit()
        return y

    state = always_succeeds_flow(return_state=True)
    assert state.is_completed() and state.message == "All states completed."
    assert state.result() == "foo"


def test_return_multiple_states_or_futures(temp_store):
    @flow
    def always_succeeds_flow():
        return "bar"

    @flow
    def always_fails_flow():
        x = always_fails_task.submit()
        y = always_succeeds_task.submit()
        z = always_succeeds_flow(return_state=True)
        return x, y, z

    state = always_fails_flow(return_state=True)
    assert state.is_failed() and state.message == "1/3 states failed."


def test_return_a_manual_state(temp_store):
    @flow
    def always_succeeds_flow():
        x = always_fails_task.submit()
        y = always_succeeds_task.submit()
        if y.result() == "foo":
            return Completed(message="I am happy with this result")
        else:
            return Failed(message="How did this happen!?")

    state = always_succeeds_flow(return_state=True)
    assert state.is_completed() and state.message == "I am happy with this result"
    assert state.result() is None


def test_return_an_object(temp_store):
    @flow
    def always_succeeds_flow():
        always_fails_task.submit()
        return "foo"

    state = always_succeeds_flow(return_state=True)
    assert state.is_completed() and state.result() == "foo"


def test_subflow_is_linked_to_its_parent(temp_store):
    @task(name="Print Hello")
    def print_hello(name):
        msg = f"Hello {name}!"
        return msg

    @flow(name="Subflow")
    def my_subflow(msg):
        return f"Subflow says: {msg}"

    @flow(name="Hello Flow")
    def hello_world(name="world"):
        message = print_hello(name)
        return my_subflow(message)

    assert hello_world("Marvin") == "Subflow says: Hello Marvin!"
    parent = temp_store.read_flow_runs(flow_name="Hello Flow")[0]
    child = temp_store.read_flow_runs(flow_name="Subflow")[0]
    assert child.parent_flow_run_id == parent.id
