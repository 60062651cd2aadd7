"""Adapted from Prefect 2 docs/concepts/runtime-context.md: only the imports changed."""

import pytest

from fleetflow import flow, task
import fleetflow.runtime
from fleetflow.context import FlowRunContext, TaskRunContext, get_run_context


def test_accessing_runtime_information(temp_store):
    @flow(log_prints=True)
    def my_flow(x):
        print("my name is", fleetflow.runtime.flow_run.name)
        print("i belong to deployment", fleetflow.runtime.deployment.name)
        my_task(2)

    @task
    def my_task(y):
        print("my name is", fleetflow.runtime.task_run.name)
        print("flow run got parameters", fleetflow.runtime.flow_run.parameters)

    my_flow(1)
    run = temp_store.read_flow_runs(flow_name="my-flow")[0]
    lines = [r.message for r in temp_store.read_logs(flow_run_id=run.id)]
    assert f"my name is {run.name}" in lines
    assert "i belong to deployment None" in lines
    assert "my name is my_task-0" in lines
    assert "flow run got parameters {'x': 1}" in lines


def test_accessing_the_run_context_directly(temp_store):
    with pytest.raises(RuntimeError):
        get_run_context()

    @flow
    def my_flow():
        flow_run_ctx = FlowRunContext.get()
        task_run_ctx = TaskRunContext.get()
        return flow_run_ctx.flow_run.name, task_run_ctx

    name, task_ctx = my_flow()
    assert name == temp_store.read_flow_runs(flow_name="my-flow")[0].name and task_ctx is None
