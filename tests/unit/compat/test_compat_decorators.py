"""Area 1: @flow / @task options from Prefect 2, hooks, with_options and .fn."""

from __future__ import annotations

import pytest

from fleetflow import flow, task
from fleetflow.exceptions import ConfigurationError, ParameterValidationError
from fleetflow.filesystems import LocalFileSystem
from fleetflow.states import StateType
from fleetflow.task_runners import SequentialTaskRunner


def test_flow_accepts_every_prefect_option(temp_store, tmp_path):
    calls = []
    storage = LocalFileSystem(basepath=str(tmp_path / "results"))

    @flow(name="etl", version=1, flow_run_name="etl-{day}", task_runner=SequentialTaskRunner(),
          validate_parameters=False, persist_result=True, result_storage=storage, result_serializer="pickle",
          cache_result_in_memory=False, retries=0, log_prints=True,
          on_completion=[lambda f, run, state: calls.append(("completed", f.name, run.name, state.name))],
          on_failure=[lambda f, run, state: calls.append(("failed",))],
          on_cancellation=[lambda *a: calls.append(("cancelled",))], on_crashed=[lambda *a: calls.append(("crashed",))])
    def etl(day: int):
        return {"day": day, "rows": [object]}  # not JSON: goes to the result storage

    out = etl("3")  # validate_parameters=False: "3" stays a str
    assert out["day"] == "3"
    run = temp_store.read_flow_runs(flow_name="etl")[0]
    assert run.name == "etl-3" and run.state.type is StateType.COMPLETED
    assert etl.version == "1"
    assert calls == [("completed", "etl", "etl-3", "Completed")]
    assert list((tmp_path / "results").rglob("*")), "the pickled result was written to result_storage"
    assert run.state.result()["day"] == "3"


def test_flow_run_name_callable_and_on_failure_hook(temp_store):
    seen = []

    @flow(flow_run_name=lambda: "named-by-callable", on_failure=[lambda f, run, state: seen.append(state.message)])
    def boom():
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        boom()
    assert temp_store.read_flow_runs(flow_name="boom")[0].name == "named-by-callable"
    assert seen == ["ValueError: bad input"]


def test_validate_parameters_default_coerces(temp_store):
    @flow
    def typed(n: int):
        return n

    assert typed("4") == 4
    with pytest.raises(ParameterValidationError):
        typed("four")


def test_task_accepts_every_prefect_option_and_hooks_run(temp_store, tmp_path):
    events = []

    @task(task_run_name="load-{table}", persist_result=True, refresh_cache=False, cache_result_in_memory=True,
          result_storage=LocalFileSystem(basepath=str(tmp_path)), retry_jitter_factor=0.5, tags=["db"],
          on_completion=[lambda t, run, state: events.append((t.name, run.name, state.type.value))],
          on_failure=[lambda t, run, state: events.append(("failed", run.name))])
    def load(table: str):
        if table == "bad":
            raise KeyError(table)
        return table.upper()

    @flow
    def pipeline():
        ok = load("users")
        state = load("bad", return_state=True)
        return ok, state.is_failed()

    assert pipeline() == ("USERS", True)
    assert events == [("load", "load-users", "COMPLETED"), ("failed", "load-bad")]
    assert load.tags == ["db"]


def test_refresh_cache_recomputes(temp_store):
    calls = []

    @task(cache_key_fn=lambda ctx, params: "fixed-key")
    def cached():
        calls.append(1)
        return len(calls)

    @flow
    def use(refresh: bool):
        return cached.with_options(refresh_cache=refresh)()

    assert use(False) == 1
    assert use(False) == 1  # cache hit
    assert use(True) == 2  # refresh_cache: runs again and replaces the cached value
    assert use(False) == 2


def test_with_options_and_fn(temp_store):
    @task(retries=2)
    def add(a, b):
        return a + b

    @flow(name="orig")
    def f():
        return add.with_options(name="adder")(1, 2)

    other = f.with_options(name="copy", flow_run_name="copy-run")
    assert add.fn(1, 2) == 3 and f.fn is f.__wrapped__
    assert other() == 3
    run = temp_store.read_flow_runs(flow_name="copy")[0]
    assert run.name == "copy-run"
    (tr,) = temp_store.read_task_runs(run.id)
    assert tr.name == "adder-0"
    assert add.with_options(name="x").retries == 2
    with pytest.raises(ConfigurationError, match="unknown task option"):
        add.with_options(retires=1)


def test_bad_options_refused_at_decoration():
    with pytest.raises(ConfigurationError, match="task_runner"):
        flow(task_runner="threads")(lambda: None)
    with pytest.raises(ConfigurationError, match="on_failure"):
        task(on_failure=["not callable"])(lambda: None)
    with pytest.raises(ConfigurationError, match="flow_run_name"):
        flow(flow_run_name="run-{missing}")(lambda x=1: x)()
