"""Area 2: SequentialTaskRunner and ConcurrentTaskRunner change how .submit() executes."""

from __future__ import annotations

import threading

from fleetflow import flow, task
from fleetflow.task_runners import ConcurrentTaskRunner, SequentialTaskRunner


def test_sequential_runner_runs_submissions_in_order_in_the_flow_thread(temp_store):
    order, threads = [], set()

    @task
    def step(i):
        order.append(i)
        threads.add(threading.current_thread().name)
        return i

    @flow(task_runner=SequentialTaskRunner())
    def seq():
        futures = [step.submit(i) for i in range(5)]
        assert all(f.done() for f in futures)  # each ran before submit() returned
        return [f.result() for f in futures]

    assert seq() == [0, 1, 2, 3, 4]
    assert order == [0, 1, 2, 3, 4]
    assert threads == {threading.main_thread().name}


def test_concurrent_runner_overlaps_submissions(temp_store):
    both_started = threading.Barrier(2, timeout=60)

    @task
    def meet(i):
        both_started.wait()  # only returns when the two runs are running at the same time
        return i

    @flow(task_runner=ConcurrentTaskRunner())
    def conc():
        return [f.result() for f in meet.map([1, 2])]

    assert conc() == [1, 2]


def test_runner_class_and_default(temp_store):
    @task
    def where():
        return threading.current_thread().name

    @flow(task_runner=SequentialTaskRunner)  # a class works too
    def by_class():
        return where.submit().result()

    @flow
    def default():
        return where.submit().result()

    assert by_class() == threading.main_thread().name
    assert default().startswith("fleetflow-task")


def test_failed_submission_under_sequential_runner_is_a_failed_future(temp_store):
    @task
    def bad():
        raise ValueError("nope")

    @flow(task_runner=SequentialTaskRunner())
    def f():
        fut = bad.submit()
        return fut.get_state().is_failed(), type(fut.result(raise_on_failure=False)).__name__

    assert f() == (True, "ValueError")
