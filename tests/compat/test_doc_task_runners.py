"""Adapted from Prefect 2 docs/concepts/task-runners.md ("Using a task runner", "Running
tasks sequentially", "Using results from submitted tasks"): only the imports changed."""

from fleetflow import flow, task
from fleetflow.futures import PrefectFuture
from fleetflow.task_runners import ConcurrentTaskRunner, SequentialTaskRunner


def test_concurrent_task_runner_elevator(temp_store):
    floors = []

    @task
    def stop_at_floor(floor):
        print(f"elevator moving to floor {floor}")
        floors.append(floor)
        print(f"elevator stops on floor {floor}")

    @flow(task_runner=ConcurrentTaskRunner())
    def elevator():
        for floor in range(10, 0, -1):
            stop_at_floor.submit(floor)

    elevator()
    assert sorted(floors) == list(range(1, 11))
    assert temp_store.read_flow_runs(flow_name="elevator")[0].state.message == "All states completed."


def test_sequential_task_runner_glass_tower(temp_store):
    import random

    visited = []

    @task
    def stop_at_floor(floor):
        situation = random.choice(["on fire", "clear"])
        visited.append(floor)
        print(f"elevator stops on {floor} which is {situation}")

    @flow(task_runner=SequentialTaskRunner(), name="towering-infernflow")
    def glass_tower():
        for floor in range(1, 39):
            stop_at_floor.submit(floor)

    glass_tower()
    assert visited == list(range(1, 39))  # in order


def test_future_type_and_passing_futures(temp_store, capsys):
    @task
    def say_hello(name):
        return f"Hello {name}!"

    @task
    def print_result(result):
        print(type(result))
        print(result)

    @flow(name="hello-flow")
    def hello_world():
        future = say_hello.submit("Marvin")
        assert isinstance(future, PrefectFuture)
        print_result.submit(future)

    hello_world()
    out = capsys.readouterr().out
    assert "<class 'str'>" in out and "Hello Marvin!" in out


def test_result_raise_on_failure_and_get_state(temp_store):
    @task
    def my_task(name):
        raise ValueError("no " + name)

    @flow
    def my_flow():
        future = my_task.submit("marvin")
        result = future.result(raise_on_failure=False)
        if future.get_state().is_failed():
            return "failed", type(result).__name__
        return "ok", result

    assert my_flow() == ("failed", "ValueError")


def test_wait_with_timeout_and_wait_for(temp_store):
    order = []

    @task
    def task_a():
        order.append("a")

    @task
    def task_b():
        order.append("b")

    @task
    def task_c():
        order.append("c")

    @task
    def task_d():
        order.append("d")
        return 42

    @flow
    def my_flow():
        a = task_a.submit()
        b = task_b.submit()
        c = task_c.submit(wait_for=[a, b])
        d = task_d(wait_for=[c])
        final_state = c.wait(60)
        return final_state.is_completed(), d

    assert my_flow() == (True, 42)
    assert sorted(order[:2]) == ["a", "b"] and order[2:] == ["c", "d"]
