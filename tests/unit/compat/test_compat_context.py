"""Area 5: fleetflow.context.get_run_context() and fleetflow.runtime."""

from __future__ import annotations

import pytest

from fleetflow import flow, tags, task
from fleetflow.context import FlowRunContext, MissingContextError, TaskRunContext, get_run_context
from fleetflow.runtime import deployment, flow_run, task_run


def test_get_run_context_in_flows_and_tasks(temp_store):
    @task
    def inner():
        ctx = get_run_context()
        return type(ctx).__name__, ctx.task_run.name, ctx.task.name, TaskRunContext.get() is ctx

    @flow
    def outer():
        ctx = get_run_context()
        return type(ctx).__name__, ctx.flow_run.name, ctx.flow.name, FlowRunContext.get() is ctx, inner()

    kind, run_name, flow_name, same, task_info = outer()
    assert (kind, flow_name, same) == ("FlowRunContext", "outer", True)
    assert run_name == temp_store.read_flow_runs(flow_name="outer")[0].name
    assert task_info == ("TaskRunContext", "inner-0", "inner", True)


def test_get_run_context_outside_runs_raises():
    with pytest.raises(RuntimeError, match="No run context"):
        get_run_context()
    assert isinstance(MissingContextError("x"), RuntimeError)
    assert FlowRunContext.get() is None and TaskRunContext.get() is None


def test_runtime_attributes(temp_store):
    @task
    def where(n):
        return task_run.id is not None, task_run.name, task_run.task_name, task_run.parameters

    @flow
    def child():
        return flow_run.parent_flow_run_id

    @flow(flow_run_name="rt-{n}")
    def parent(n: int):
        return (flow_run.id, flow_run.name, flow_run.parameters, flow_run.scheduled_start_time is not None,
                deployment.id, deployment.name, where(n=n), child())

    run_id, name, params, has_start, dep_id, dep_name, task_info, parent_id = parent(7)
    stored = temp_store.read_flow_runs(flow_name="parent")[0]
    assert (run_id, name, params, has_start) == (stored.id, "rt-7", {"n": 7}, True)
    assert (dep_id, dep_name) == (None, None)  # not created from a deployment
    assert task_info == (True, "where-0", "where", {"n": 7})
    assert parent_id == stored.id


def test_runtime_outside_runs_is_empty():
    assert flow_run.id is None and flow_run.parameters == {} and task_run.name is None and deployment.name is None


def test_tags_context_manager(temp_store):
    @flow(tags=["own"])
    def tagged():
        return flow_run.tags

    with tags("a", "b"):
        with tags("c"):
            inside = tagged()
        outside_inner = tagged()
    assert inside == ["a", "b", "c", "own"]
    assert outside_inner == ["a", "b", "own"]
    assert tagged() == ["own"]
