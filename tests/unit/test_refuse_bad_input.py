"""Bad input is refused before any run exists (issue 11, section 4): parameters, names,
secrets in plain env, and the RunTask overrides limit counting what the worker adds."""

from __future__ import annotations

import pytest

from fleetflow.aws import ECSTask
from fleetflow.aws import ecs_requests as rq
from fleetflow.aws.ecs_validation import placeholder_run_task_request, worker_env_placeholder
from fleetflow.exceptions import ECSConfigError, InvalidNameError, ObjectNotFound, OverridesTooLargeError, ParameterValidationError
from fleetflow.orchestrator import WorkPool
from fleetflow.orchestrator.names import check_name, name_problem
from fleetflow.orchestrator.parameter_checks import check_serialisable, check_types, matches

SCHEMA = {"properties": {
    "x": {"type": "integer"}, "s": {"type": "string"}, "flag": {"type": "boolean"},
    "xs": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]},
    "model": {"$ref": "#/$defs/Thing"},
}}


@pytest.mark.parametrize("name,value,ok", [
    ("x", 3, True), ("x", "5", True), ("x", 2.0, True), ("x", "abc", False), ("x", True, False), ("x", 2.5, False),
    ("s", "hi", True), ("s", 5, False),
    ("flag", True, True), ("flag", "yes", True), ("flag", "maybe", False),
    ("xs", [1, "2"], True), ("xs", None, True), ("xs", ["a"], False), ("xs", 3, False),
    ("model", {"anything": 1}, True),  # $ref: left to the runner's pydantic model
])
def test_types_follow_what_the_runner_accepts(name, value, ok):
    assert matches(SCHEMA["properties"][name], value) is ok
    if ok:
        check_types("f/d", SCHEMA, {name: value})
    else:
        with pytest.raises(ParameterValidationError, match=f"parameter {name!r} must be") as info:
            check_types("f/d", SCHEMA, {name: value})
        assert info.value.field == name and "no run was created" in str(info.value)


def test_unserialisable_value_names_the_parameter():
    import json

    with pytest.raises(ParameterValidationError, match="parameter 'handle' cannot be stored") as info:
        check_serialisable("f/d", {"ok": 1, "handle": object()}, json.dumps)
    assert info.value.field == "handle"


def test_store_names_the_unstorable_parameter_instead_of_a_statement_error(orchestrator):
    with pytest.raises(ParameterValidationError, match="parameter 'bad' cannot be stored"):
        orchestrator.create_flow_run("f", parameters={"fine": 1, "bad": object()})
    assert orchestrator.read_flow_runs() == []


@pytest.mark.parametrize("value", ["team/etl", "a\nb", "tab\there", "", " x", "x" * 101])
def test_bad_names_are_refused_with_the_fix(value):
    assert name_problem(value)
    with pytest.raises(InvalidNameError, match="invalid flow name"):
        check_name("flow", value)


def test_slash_name_suggests_a_replacement():
    with pytest.raises(InvalidNameError, match="e.g. 'team-etl'.*name='team-etl'"):
        check_name("flow", "team/etl")
    assert check_name("work pool", "gpu-pool") == "gpu-pool"


def test_pool_names_are_checked_by_the_store(orchestrator):
    with pytest.raises(InvalidNameError, match="work pool"):
        orchestrator.create_work_pool(WorkPool(id="", name="bad\nname", type="process"))
    assert orchestrator.read_work_pools() == []


@pytest.mark.parametrize("name,value", [
    ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMIexample"), ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"), ("DB_PASSWORD", "hunter2"),
    ("GITHUB_TOKEN", "ghp_example_value"), ("FLEETFLOW_ENCRYPTION_KEY", "fernet-key-value"), ("DATABASE_URL", "postgresql://u:pw@db/x"),
])
def test_secret_values_in_plain_env_are_refused_at_block_creation(name, value):
    with pytest.raises(ECSConfigError, match="secrets=") as info:
        ECSTask(env={name: value})
    assert value not in str(info.value)  # never echo the secret


def test_plain_values_and_unsets_are_fine():
    ECSTask(env={"LOG_LEVEL": "debug", "DATABASE_URL": "postgresql://u@db/x", "DB_PASSWORD": None})


def _size_without_worker_env(length: int) -> int:
    block = ECSTask.model_construct(**{**ECSTask().__dict__, "env": {"BIG": "x" * length}})  # skips validation
    plan = rq.plan_task_definition(block, region="us-east-1")
    return rq.overrides_size(placeholder_run_task_request(block, plan, "us-east-1", rq.PLACEHOLDER_FLOW_RUN_ID))


def test_overrides_limit_counts_what_the_worker_adds():
    """An env that fits alone but not with the worker's variables is refused at creation."""
    added = worker_env_placeholder(ECSTask(), rq.PLACEHOLDER_FLOW_RUN_ID)
    assert {"FLEETFLOW_FLOW_RUN_ID", "FLEETFLOW_LAUNCH_TOKEN"} <= set(added)
    fits = rq.OVERRIDES_CHAR_LIMIT - _size_without_worker_env(0)  # the value's characters count one for one
    assert _size_without_worker_env(fits) == rq.OVERRIDES_CHAR_LIMIT  # alone: exactly at the limit
    with pytest.raises(OverridesTooLargeError, match="8192"):
        ECSTask(env={"BIG": "x" * fits})
    ECSTask(env={"BIG": "x" * (fits - 600)})  # room for what the worker adds


def test_bare_deployment_name_gets_the_full_form_hint(temp_store, tmp_path):
    from fleetflow.deployments import Deployment, run_deployment
    from fleetflow.entrypoints import load_flow_from_entrypoint

    (tmp_path / "flows.py").write_text("from fleetflow import flow\n\n@flow\ndef echo(x: int = 1):\n    return x\n")
    Deployment.build_from_flow(load_flow_from_entrypoint("flows.py:echo", tmp_path), "nightly", path=str(tmp_path)).apply()
    with pytest.raises(ObjectNotFound, match="'flow-name/deployment-name'.*did you mean 'echo/nightly'"):
        run_deployment("nightly", timeout=0)
    for bad in ({"x": "abc"}, {"x": object()}):
        with pytest.raises(ParameterValidationError, match="parameter 'x'"):
            run_deployment("echo/nightly", parameters=bad, timeout=0, as_subflow=False)
    assert temp_store.read_flow_runs() == []  # refused before any run existed
    assert run_deployment("echo/nightly", parameters={"x": "5"}, timeout=0, as_subflow=False).parameters == {"x": "5"}


def test_flow_named_with_a_slash_is_refused_at_deploy(temp_store, tmp_path):
    from fleetflow.deployments import Deployment
    from fleetflow.entrypoints import load_flow_from_entrypoint

    (tmp_path / "flows.py").write_text("from fleetflow import flow\n\n@flow(name='team/etl')\ndef etl():\n    return 1\n")
    flow = load_flow_from_entrypoint("flows.py:etl", tmp_path)
    with pytest.raises(InvalidNameError, match="invalid flow name 'team/etl'.*name='team-etl'"):
        Deployment.build_from_flow(flow, "d", path=str(tmp_path)).apply(upload=False)
    assert temp_store.read_deployments() == []
