"""Adapted from Prefect 2 docs/concepts/tasks.md ("Task arguments", "Tags", "Retries",
"Caching", "Timeouts", "Map", "Wait for"): only the imports changed."""

from __future__ import annotations

import datetime
from datetime import timedelta

import pytest

from fleetflow import flow, get_run_logger, tags, task, task_input_hash, unmapped
from fleetflow.tasks import exponential_backoff


def test_task_run_name_template(temp_store):
    @task(name="My Example Task", description="An example task for a tutorial.",
          task_run_name="hello-{name}-on-{date:%A}")
    def my_task(name, date):
        pass

    @flow
    def my_flow():
        my_task(name="marvin", date=datetime.datetime(2023, 4, 14))

    my_flow()
    run = temp_store.read_flow_runs(flow_name="my-flow")[0]
    assert [t.name for t in temp_store.read_task_runs(run.id)] == ["hello-marvin-on-Friday"]


def test_tags_argument_and_context_manager(temp_store):
    from fleetflow.runtime import flow_run

    @task(name="hello-task", tags=["test"])
    def my_task():
        print("Hello, I'm a task")

    @flow
    def my_flow():
        my_task()
        return flow_run.tags

    with tags("test"):
        assert my_flow() == ["test"]
    assert my_task.tags == ["test"]


def test_exponential_backoff_delays():
    assert exponential_backoff(backoff_factor=10)(3) == [10, 20, 40]

    @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=10), retry_jitter_factor=1)
    def some_task_with_exponential_backoff_retries():
        pass

    assert some_task_with_exponential_backoff_retries.retry_delay_seconds == [10, 20, 40]


def test_retries_with_a_list_of_delays(temp_store):
    attempts = []

    @task(retries=3, retry_delay_seconds=[0, 0, 0])
    def get_data_task():
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return {"rows": 1}

    @flow
    def get_data_flow():
        return get_data_task()

    assert get_data_flow() == {"rows": 1} and len(attempts) == 3
    run = temp_store.read_flow_runs(flow_name="get-data-flow")[0]
    retries = [r.message for r in temp_store.read_logs(flow_run_id=run.id) if "Retry" in r.message]
    assert len(retries) == 2 and retries[0].startswith("Task run failed with exception ConnectionError('try again') - Retry 1/3")


def test_caching_with_task_input_hash(temp_store):
    calls = []

    @task(cache_key_fn=task_input_hash, cache_expiration=timedelta(days=1))
    def hello_task(name_input):
        calls.append(name_input)
        return "hello " + name_input

    @flow
    def hello_flow(name_input):
        return hello_task(name_input)

    assert hello_flow("marvin") == hello_flow("marvin") == "hello marvin"
    assert calls == ["marvin"]
    run = temp_store.read_flow_runs(flow_name="hello-flow")[0]
    assert temp_store.read_task_runs(run.id)[0].state.name == "Cached"


def test_refresh_cache(temp_store):
    import random

    def static_cache_key(context, parameters):
        return "static cache key"

    @task(cache_key_fn=static_cache_key, refresh_cache=True)
    def caching_task():
        return random.random()

    @flow
    def twice():
        return caching_task(), caching_task()

    first, second = twice()
    assert first != second  # refresh_cache ignores the cached value


def test_timeouts(temp_store):
    import threading

    stop = threading.Event()

    @task(timeout_seconds=0.1)
    def show_timeouts():
        logger = get_run_logger()
        logger.info("I will execute")
        stop.wait(30)
        logger.info("I will not execute")

    @flow
    def f():
        return show_timeouts(return_state=True)

    try:
        state = f(return_state=True)
    finally:
        stop.set()
    assert state.name == "TimedOut" and state.is_failed()


def test_map_and_unmapped(temp_store):
    @task
    def add_together(x, y):
        return x + y

    @flow
    def sum_it(numbers, static_value):
        futures = add_together.map(numbers, unmapped(static_value))
        return futures

    assert sum_it([1, 2, 3], 5) == [6, 7, 8]
    run = temp_store.read_flow_runs(flow_name="sum-it")[0]
    assert sorted(t.name for t in temp_store.read_task_runs(run.id)) == ["add_together-0", "add_together-1", "add_together-2"]


def test_task_called_outside_a_flow():
    @task
    def my_task():
        return 1

    with pytest.raises(RuntimeError, match="Tasks cannot be run outside of a flow"):
        my_task()
    assert my_task.fn() == 1
