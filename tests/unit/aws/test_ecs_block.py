"""The ECSTask block: Prefect-compatible fields, validation with actionable errors, preview,
and the generic ``apply_overrides`` helper."""

from __future__ import annotations

import json

import pydantic
import pytest

from fleetflow.aws import AwsCredentials, ECSTask, validate_ecs_task
from fleetflow.blocks import MASK
from fleetflow.blocks.overrides import apply_overrides
from fleetflow.exceptions import (
    ConfigurationError,
    ECSConfigError,
    FargateSizeError,
    InvalidOverrideError,
    OverridesTooLargeError,
    TaskCustomizationError,
)

EXEC_ROLE = "arn:aws:iam::123456789012:role/fleetflow-exec"
TASK_ROLE = "arn:aws:iam::123456789012:role/service-role/fleetflow-task"
TD_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/mine:7"


def raises_on(field: str, exc: type[Exception] = ECSConfigError, **kw) -> str:
    """Build an ECSTask that must fail; returns the message after checking the named field."""
    with pytest.raises(exc) as err:
        ECSTask(**kw)
    assert err.value.field == field, str(err.value)
    return str(err.value)


# --- fields and defaults ----------------------------------------------------------------------
def test_prefect_aws_fields_and_defaults():
    task = ECSTask()
    assert task.auto_deregister_task_definition is False
    assert task.task_start_timeout_seconds == 300 and task.task_watch_poll_interval == 5.0
    assert task.container_name == "flow" and task.launch_type is None
    assert task.env == {} and task.labels == {} and task.command is None and task.aws_credentials is None
    assert ECSTask.get_block_type_slug() == "ecs-task"


def test_every_field_has_a_description():
    missing = [name for name, info in ECSTask.model_fields.items() if not info.description]
    assert missing == []


def test_prefect_style_configuration_is_accepted():
    task = ECSTask(
        aws_credentials=AwsCredentials(region_name="us-east-1"),
        image="annaprefect/prefect-s3:latest",
        cpu="256",  # Prefect examples pass strings
        memory="512",
        stream_output=True,
        configure_cloudwatch_logs=True,
        cluster="prefect",
        execution_role_arn=EXEC_ROLE,
        task_role_arn=TASK_ROLE,
        vpc_id="vpc-0ff32ab58b1c8695a",
        task_start_timeout_seconds=90,
        task_customizations=[
            {"op": "replace", "path": "/networkConfiguration/awsvpcConfiguration/assignPublicIp", "value": "DISABLED"},
            {"op": "add", "path": "/networkConfiguration/awsvpcConfiguration/securityGroups", "value": ["sg-d72e9599956a084f5"]},
        ],
        env={"PLANET": "earth"},
        command=["echo", "hello"],
        family="my-family",
        labels={"k": "v"},
        name="n",
    )
    assert (task.cpu, task.memory) == (256, 512)


def test_stream_output_turns_on_cloudwatch_logs():
    assert ECSTask(stream_output=True, execution_role_arn=EXEC_ROLE).configure_cloudwatch_logs is True
    assert ECSTask(stream_output=True, task_definition_arn=TD_ARN).configure_cloudwatch_logs is None


def test_unknown_field_is_rejected():
    with pytest.raises(ConfigurationError):
        ECSTask(memroy=512)


# --- validation errors name the field and the fix ------------------------------------------------
def test_fargate_pair_checked_at_creation():
    message = raises_on("memory", FargateSizeError, cpu=1024, memory=512)
    assert "2048, 3072, 4096, 5120, 6144, 7168, 8192" in message and "cpu=256" in message


def test_fargate_spot_and_fargate_strategies_are_sized_too():
    raises_on("memory", FargateSizeError, launch_type="FARGATE_SPOT", cpu=256, memory=4096)
    raises_on("memory", FargateSizeError, capacity_provider_strategy=[{"capacityProvider": "FARGATE"}], cpu=256, memory=4096)


def test_ec2_is_not_held_to_the_fargate_table():
    ECSTask(launch_type="EC2", cpu=300, memory=700)


@pytest.mark.parametrize("field", ["execution_role_arn", "task_role_arn"])
@pytest.mark.parametrize("arn", ["my-role", "arn:aws:iam::12345:role/x", "arn:aws:iam::123456789012:user/x", "arn:aws:s3:::bucket"])
def test_role_arns_must_be_well_formed(field, arn):
    message = raises_on(field, **{field: arn})
    assert "arn:aws:iam::<12-digit account>:role/<name>" in message


def test_gov_cloud_and_china_role_arns_are_valid():
    ECSTask(execution_role_arn="arn:aws-us-gov:iam::123456789012:role/x", task_role_arn="arn:aws-cn:iam::123456789012:role/a/b")


def test_cloudwatch_logs_need_an_execution_role():
    message = raises_on("execution_role_arn", configure_cloudwatch_logs=True)
    assert "logs:CreateLogStream" in message
    raises_on("execution_role_arn", stream_output=True)
    ECSTask(configure_cloudwatch_logs=True, task_definition={"executionRoleArn": EXEC_ROLE})


def test_cloudwatch_logs_options_need_logs():
    raises_on("cloudwatch_logs_options", cloudwatch_logs_options={"awslogs-group": "x"})


def test_capacity_provider_strategy_excludes_launch_type():
    message = raises_on(
        "capacity_provider_strategy", launch_type="FARGATE", capacity_provider_strategy=[{"capacityProvider": "FARGATE_SPOT"}]
    )
    assert "drop launch_type" in message


@pytest.mark.parametrize(
    "strategy",
    [
        [{"provider": "FARGATE"}],
        [{"capacityProvider": "FARGATE", "weight": 2000}],
        [{"capacityProvider": "FARGATE", "base": 1}, {"capacityProvider": "FARGATE_SPOT", "base": 2}],
        [{"capacityProvider": "FARGATE"}, {"capacityProvider": "my-asg"}],
    ],
)
def test_bad_capacity_provider_strategies(strategy):
    raises_on("capacity_provider_strategy", capacity_provider_strategy=strategy)


def test_gpu_only_on_ec2():
    assert "launch_type='EC2'" in raises_on("gpu", gpu=1)
    raises_on("gpu", gpu=1, launch_type="FARGATE_SPOT")
    ECSTask(gpu=1, launch_type="EC2")
    ECSTask(gpu=1, capacity_provider_strategy=[{"capacityProvider": "gpu-asg", "weight": 1}])


@pytest.mark.parametrize("size", [20, 201, 0])
def test_ephemeral_storage_range(size):
    assert "21-200" in raises_on("ephemeral_storage_gib", ephemeral_storage_gib=size)


def test_ephemeral_storage_is_fargate_only():
    ECSTask(ephemeral_storage_gib=21)
    ECSTask(ephemeral_storage_gib=200)
    raises_on("ephemeral_storage_gib", ephemeral_storage_gib=50, launch_type="EC2")


@pytest.mark.parametrize(
    "ref",
    [
        "/prod/db/password",
        "db_password",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/db",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf:password::",
    ],
)
def test_secret_references_accepted(ref):
    ECSTask(secrets={"DB_PASSWORD": ref})


@pytest.mark.parametrize("ref", ["hunter2 with spaces!", "p@ssw0rd", "arn:aws:s3:::bucket/key", "team/db/pw"])
def test_secret_values_rejected_without_echoing_them(ref):
    message = raises_on("secrets.DB_PASSWORD", secrets={"DB_PASSWORD": ref})
    assert ref not in message and "SSM parameter name" in message


def test_secret_name_must_be_an_env_name():
    raises_on("secrets.not-a-name", secrets={"not-a-name": "/x"})


def test_env_values_must_be_strings():
    message = raises_on("env.WORKERS", env={"WORKERS": 4})
    assert "'4'" in message
    assert ECSTask(env={"A": "1", "B": None}).env == {"A": "1", "B": None}


def test_env_cannot_shadow_a_secret():
    raises_on("env", env={"DB_PASSWORD": "x"}, secrets={"DB_PASSWORD": "/prod/db"})


def test_task_definition_arn_excludes_definition_only_fields():
    raises_on("task_definition", task_definition_arn=TD_ARN, task_definition={"family": "x"})
    for field, value in [("image", "x:1"), ("secrets", {"A": "/a"}), ("gpu", 1), ("runtime_platform", {"cpuArchitecture": "ARM64"})]:
        kw = {field: value, "launch_type": "EC2"} if field == "gpu" else {field: value}
        assert "task_definition=" in raises_on(field, task_definition_arn=TD_ARN, **kw)
    ECSTask(task_definition_arn=TD_ARN, cpu=512, env={"A": "b"}, tags={"team": "ml"})


def test_runtime_platform_values():
    ECSTask(runtime_platform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"})
    assert "X86_64, ARM64" in raises_on("runtime_platform.cpuArchitecture", runtime_platform={"cpuArchitecture": "arm"})
    raises_on("runtime_platform", runtime_platform={"arch": "ARM64"})


def test_network_ids():
    raises_on("subnets", subnets=["10.0.0.0/24"])
    raises_on("security_groups", security_groups=["default"])
    raises_on("vpc_id", vpc_id="my-vpc")


def test_fargate_rejects_other_network_modes():
    raises_on("task_definition.networkMode", task_definition={"networkMode": "bridge"})
    ECSTask(task_definition={"networkMode": "bridge"}, launch_type="EC2")


def test_customizations_must_apply_at_creation():
    message = raises_on(
        "task_customizations",
        TaskCustomizationError,
        task_customizations=[{"op": "replace", "path": "/networkConfiguration/awsvpcConfiguration/subnets/7", "value": "s"}],
    )
    assert "task_customizations[0] (op='replace', path='/networkConfiguration/awsvpcConfiguration/subnets/7')" in message


def test_customizations_of_network_fail_on_bridge_mode():
    patch = [{"op": "add", "path": "/networkConfiguration/awsvpcConfiguration/subnets", "value": ["subnet-1"]}]
    ECSTask(task_customizations=patch)  # Fargate: networkConfiguration exists
    raises_on("task_customizations", TaskCustomizationError, launch_type="EC2", task_customizations=patch)


def test_overrides_too_large_at_creation():
    raises_on("env", OverridesTooLargeError, env={"PAYLOAD": "x" * 9000})


def test_validate_ecs_task_catches_what_model_copy_skipped():
    task = ECSTask(cpu=1024)
    merged = task.model_copy(update={"memory": 512})  # no validators run
    with pytest.raises(FargateSizeError):
        validate_ecs_task(merged)
    with pytest.raises(ECSConfigError):
        validate_ecs_task(task.model_copy(update={"env": {"N": 1}}))
    with pytest.raises(TaskCustomizationError):
        validate_ecs_task(task.model_copy(update={"task_customizations": "[oops"}))


def test_assignment_is_validated():
    task = ECSTask(cpu=1024)
    task.cpu = 4096  # memory unset: defaults to 8192
    with pytest.raises(FargateSizeError):
        task.memory = 1024


def test_every_validation_error_is_a_configuration_error():
    for exc in (ECSConfigError, FargateSizeError, TaskCustomizationError, OverridesTooLargeError, InvalidOverrideError):
        assert issubclass(exc, ConfigurationError)


# --- preview -----------------------------------------------------------------------------------
def test_preview_shows_both_requests_with_placeholders():
    task = ECSTask(image="img:1", aws_credentials=AwsCredentials(region_name="eu-west-1"), cpu=512)
    preview = task.preview(flow_run_id="run-1")
    td, req = preview["task_definition"], preview["run_task_request"]
    assert req["taskDefinition"] == f"arn:aws:ecs:eu-west-1:000000000000:task-definition/{td['family']}:1"
    assert req["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["<discovered at launch>"]
    assert req["overrides"]["containerOverrides"][0]["command"] == ["python", "-m", "fleetflow.runner", "run-1"]
    # The definition carries a base size shared by every run; the run's own size is an override.
    assert req["overrides"]["cpu"] == "512" and req["overrides"]["memory"] == "1024"
    assert td == ECSTask(image="img:1", aws_credentials=AwsCredentials(region_name="eu-west-1")).preview()["task_definition"]
    json.dumps(preview)  # plain JSON


def test_preview_uses_explicit_subnets_and_task_definition_arn():
    preview = ECSTask(task_definition_arn=TD_ARN, subnets=["subnet-1"]).preview()
    assert preview["task_definition"] is None
    assert preview["run_task_request"]["taskDefinition"] == TD_ARN
    assert preview["run_task_request"]["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["subnet-1"]


def test_preview_masks_secrets():
    task = ECSTask(
        aws_credentials=AwsCredentials(aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="wJalrXUtnFEMI/K7MDENG"),
        env={"MODE": "fast", "ECHO": "wJalrXUtnFEMI/K7MDENG", "CREDENTIAL_HINT": "see vault"},
        secrets={"DB_PASSWORD": "/prod/db/password"},
        execution_role_arn=EXEC_ROLE,
    )
    text = json.dumps(task.preview())
    assert "wJalrXUtnFEMI/K7MDENG" not in text  # a credential value echoed anywhere is masked
    assert MASK in text and '"fast"' in text
    env = task.preview()["run_task_request"]["overrides"]["containerOverrides"][0]["environment"]
    assert {"name": "CREDENTIAL_HINT", "value": MASK} in env  # secret-looking names are masked too
    with pytest.raises(ECSConfigError, match="secrets="):  # a token in plain env is refused outright
        ECSTask(env={"GITHUB_TOKEN": "ghp_abcdef"})
    assert "DB_PASSWORD" not in {e["name"] for e in env}  # only in the task definition's secrets
    secrets = task.preview()["task_definition"]["containerDefinitions"][0]["secrets"]
    assert secrets == [{"name": "DB_PASSWORD", "valueFrom": "/prod/db/password"}]


def test_preview_applies_dot_path_overrides():
    task = ECSTask(image="img", env={"A": "1"})
    preview = task.preview(overrides={"cpu": 2048, "memory": 4096, "env.FOO": "x", "env.A": None})
    req = preview["run_task_request"]
    assert req["overrides"]["cpu"] == "2048" and req["overrides"]["memory"] == "4096"
    assert req["overrides"]["containerOverrides"][0]["environment"] == [{"name": "FOO", "value": "x"}]
    assert task.cpu is None and task.env == {"A": "1"}  # the block itself is unchanged


def test_preview_rejects_bad_overrides():
    with pytest.raises(InvalidOverrideError) as err:
        ECSTask().preview(overrides={"memroy": 512})
    assert "did you mean 'memory'" in str(err.value) and err.value.field == "memroy"
    with pytest.raises(InvalidOverrideError) as err:
        ECSTask().preview(overrides={"cpu": 1024, "memory": 512})
    assert err.value.field == "memory" and isinstance(err.value.__cause__, FargateSizeError)


# --- apply_overrides (generic over pydantic models) -----------------------------------------------
class Plain(pydantic.BaseModel):
    """A non-block model: apply_overrides must not depend on Block."""

    model_config = pydantic.ConfigDict(extra="forbid")
    size: int = 1
    labels: dict[str, str] = {}
    nested: AwsCredentials | None = None


def test_apply_overrides_on_a_plain_model():
    model = Plain()
    out = apply_overrides(model, {"size": "3", "labels.team": "ml", "labels.a.b": "dots stay in the key"})
    assert out.size == 3 and out.labels == {"team": "ml", "a.b": "dots stay in the key"}
    assert model.size == 1 and model.labels == {}
    assert apply_overrides(model, {}) is model and apply_overrides(model, None) is model


def test_apply_overrides_into_a_nested_model_that_is_unset():
    out = apply_overrides(Plain(), {"nested.region_name": "eu-west-1"})
    assert isinstance(out.nested, AwsCredentials) and out.nested.region_name == "eu-west-1"


def test_unknown_override_suggests_close_matches():
    with pytest.raises(InvalidOverrideError) as err:
        apply_overrides(Plain(), {"sise": 2})
    assert "did you mean 'size'" in str(err.value) and err.value.field == "sise"
    with pytest.raises(InvalidOverrideError) as err:
        apply_overrides(Plain(), {"nested.regoin_name": "x"})
    assert "'region_name'" in str(err.value) and err.value.field == "nested.regoin_name"


def test_invalid_override_value_names_the_field():
    with pytest.raises(InvalidOverrideError) as err:
        apply_overrides(Plain(), {"size": "big"})
    assert err.value.field == "size" and "'big'" in str(err.value)
    with pytest.raises(InvalidOverrideError) as err:
        apply_overrides(Plain(), {"size.x": 1})
    assert err.value.field == "size"


def test_secret_override_values_are_not_echoed():
    with pytest.raises(InvalidOverrideError) as err:
        apply_overrides(ECSTask(), {"aws_credentials.aws_secret_access_key": ["hunter2"]})
    assert "hunter2" not in str(err.value) and err.value.field == "aws_credentials.aws_secret_access_key"


def test_overrides_rerun_block_validation():
    task = ECSTask(launch_type="EC2", gpu=1)
    with pytest.raises(InvalidOverrideError) as err:
        apply_overrides(task, {"launch_type": "FARGATE"})
    assert err.value.field == "gpu"
    assert apply_overrides(task, {"launch_type": "FARGATE", "gpu": None}).gpu is None


def test_overrides_keep_secrets_of_nested_blocks():
    task = ECSTask(aws_credentials=AwsCredentials(aws_secret_access_key="s3cr3t"))
    out = apply_overrides(task, {"aws_credentials.region_name": "us-west-2", "cpu": 512})
    assert out.aws_credentials.aws_secret_access_key.get_secret_value() == "s3cr3t"
    assert out.aws_credentials.region_name == "us-west-2" and out.memory is None


def test_save_and_load_round_trip():
    task = ECSTask(
        image="img:1",
        cpu=512,
        memory=2048,
        aws_credentials=AwsCredentials(aws_secret_access_key="s3cr3t", region_name="eu-west-1"),
        task_customizations=[{"op": "add", "path": "/platformVersion", "value": "LATEST"}],
        secrets={"DB": "/prod/db"},
        capacity_provider_strategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
    )
    task.save("prod-ecs")
    loaded = ECSTask.load("prod-ecs")
    assert loaded == task
    assert loaded.aws_credentials.aws_secret_access_key.get_secret_value() == "s3cr3t"
