"""The pure ECS request builders and Fargate sizing rules: no AWS, no boto3."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fleetflow.aws import ECSTask
from fleetflow.aws import ecs_requests as rq
from fleetflow.aws.fargate import (
    FARGATE_SIZES,
    check_fargate_size,
    default_fargate_size,
    fargate_memory_options,
)
from fleetflow.exceptions import ECSConfigError, FargateSizeError, OverridesTooLargeError, TaskCustomizationError

EXEC_ROLE = "arn:aws:iam::123456789012:role/fleetflow-exec"
TASK_ROLE = "arn:aws:iam::123456789012:role/fleetflow-task"
RUN_ID = "6f1c1e2a-0000-4000-8000-000000000001"


def run_request(block: ECSTask, **kw) -> dict:
    """A RunTask request with typical launcher arguments; ``kw`` replaces any of them."""
    args = dict(
        task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/fleetflow-flow-abc:1",
        flow_run_id=RUN_ID,
        env={"FLEETFLOW_FLOW_RUN_ID": RUN_ID},
        command=rq.default_command(RUN_ID),
        network_configuration=rq.build_network_configuration(block, ["subnet-1"]),
        client_token=rq.make_client_token(RUN_ID, 1),
        started_by="fleetflow-worker",
        tags={"fleetflow:deployment": "train/gpu"},
    )
    args.update(kw)
    return rq.build_run_task_request(block, **args)


def flow_override(request: dict) -> dict:
    return request["overrides"]["containerOverrides"][0]


# --- Fargate sizes ----------------------------------------------------------------------------
VALID_PAIRS = [(cpu, mem) for cpu, mems in FARGATE_SIZES.items() for mem in mems]


def test_fargate_table_matches_aws_documentation():
    assert fargate_memory_options(256) == [512, 1024, 2048]
    assert fargate_memory_options(512) == [1024, 2048, 3072, 4096]
    assert fargate_memory_options(1024) == list(range(2048, 8193, 1024))
    assert fargate_memory_options(2048) == list(range(4096, 16385, 1024))
    assert fargate_memory_options(4096) == list(range(8192, 30721, 1024))
    assert fargate_memory_options(8192) == list(range(16384, 61441, 4096))
    assert fargate_memory_options(16384) == list(range(32768, 122881, 8192))
    assert fargate_memory_options(3000) == []


@pytest.mark.parametrize("cpu,memory", VALID_PAIRS)
def test_every_valid_fargate_pair_is_accepted(cpu, memory):
    check_fargate_size(cpu, memory)
    ECSTask(cpu=cpu, memory=memory)


@pytest.mark.parametrize(
    "cpu,memory,listed",
    [
        (256, 4096, "512, 1024, 2048"),
        (512, 512, "1024, 2048, 3072, 4096"),
        (1024, 1536, "2048, 3072, 4096, 5120, 6144, 7168, 8192"),
        (2048, 2048, "4096, 5120"),
        (4096, 32768, "8192, 9216"),
        (8192, 18432, "16384, 20480, 24576"),  # 18 GiB: between the 4 GiB steps
        (16384, 36864, "32768, 40960"),  # 36 GiB: between the 8 GiB steps
    ],
)
def test_invalid_memory_lists_the_valid_values_for_the_cpu(cpu, memory, listed):
    with pytest.raises(FargateSizeError) as err:
        check_fargate_size(cpu, memory)
    assert err.value.field == "memory"
    assert f"memory={memory}" in str(err.value) and f"cpu={cpu}" in str(err.value)
    assert listed in str(err.value)


@pytest.mark.parametrize("cpu", [128, 300, 3072, 32768])
def test_invalid_cpu_lists_the_valid_cpus(cpu):
    with pytest.raises(FargateSizeError) as err:
        check_fargate_size(cpu, 2048)
    assert err.value.field == "cpu"
    assert "256, 512, 1024, 2048, 4096, 8192, 16384" in str(err.value)


@pytest.mark.parametrize(
    "cpu,memory,expected",
    [
        (None, None, (1024, 2048)),
        (4096, None, (4096, 8192)),  # not Prefect's invalid 4096/2048
        (None, 512, (256, 512)),
        (None, 4096, (1024, 4096)),
        (None, 30720, (4096, 30720)),
        (2048, 8192, (2048, 8192)),
    ],
)
def test_unset_half_defaults_to_a_valid_pair(cpu, memory, expected):
    assert default_fargate_size(cpu, memory) == expected


# --- task definition --------------------------------------------------------------------------
def full_block(**kw) -> ECSTask:
    base = dict(
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/flows:1",
        cpu=2048,
        memory=8192,
        execution_role_arn=EXEC_ROLE,
        task_role_arn=TASK_ROLE,
        configure_cloudwatch_logs=True,
        secrets={"DB_PASSWORD": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"},
        runtime_platform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        ephemeral_storage_gib=50,
        tags={"team": "ml"},
        family="train",
    )
    base.update(kw)
    return ECSTask(**base)


def test_task_definition_has_our_fields():
    td = rq.build_task_definition(full_block(), region="eu-west-1")
    (container,) = td["containerDefinitions"]
    assert td["family"].startswith("fleetflow-train-") and len(td["family"]) == len("fleetflow-train-") + 12
    assert container["name"] == "flow" and container["image"].endswith("flows:1") and container["essential"]
    assert (td["cpu"], td["memory"]) == ("2048", "8192")
    assert (container["cpu"], container["memory"]) == (2048, 8192)
    assert td["requiresCompatibilities"] == ["FARGATE"] and td["networkMode"] == "awsvpc"
    assert td["executionRoleArn"] == EXEC_ROLE and td["taskRoleArn"] == TASK_ROLE
    assert container["secrets"] == [{"name": "DB_PASSWORD", "valueFrom": full_block().secrets["DB_PASSWORD"]}]
    assert td["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}
    assert td["ephemeralStorage"] == {"sizeInGiB": 50}
    assert td["tags"] == [{"key": "team", "value": "ml"}]


def test_log_configuration_is_awslogs_with_constant_group_and_prefix():
    td = rq.build_task_definition(full_block(name="run-42"), region="eu-west-1")
    log = td["containerDefinitions"][0]["logConfiguration"]
    assert log["logDriver"] == "awslogs"
    assert log["options"]["awslogs-group"] == "/fleetflow/flows"
    assert log["options"]["awslogs-region"] == "eu-west-1"
    assert log["options"]["awslogs-stream-prefix"] == "fleetflow"  # never the per-run name


def test_cloudwatch_logs_options_override_defaults():
    block = full_block(cloudwatch_logs_options={"awslogs-group": "/team/ml"})
    options = rq.build_task_definition(block, region="eu-west-1")["containerDefinitions"][0]["logConfiguration"]["options"]
    assert options["awslogs-group"] == "/team/ml" and options["awslogs-stream-prefix"] == "fleetflow"


def test_logs_need_a_region_from_caller_or_credentials():
    with pytest.raises(ECSConfigError) as err:
        rq.build_task_definition(full_block())
    assert err.value.field == "aws_credentials.region_name"
    block = full_block(aws_credentials={"region_name": "ap-south-1"})
    assert "ap-south-1" in json.dumps(rq.build_task_definition(block))


def test_gpu_on_ec2_becomes_a_resource_requirement():
    block = ECSTask(image="img", launch_type="EC2", gpu=2, cpu=4096, memory=16384)
    td = rq.build_task_definition(block)
    assert td["containerDefinitions"][0]["resourceRequirements"] == [{"type": "GPU", "value": "2"}]
    assert td["requiresCompatibilities"] == ["EC2"] and "networkMode" not in td


def test_same_content_gives_same_family_and_digest():
    a, b = rq.build_task_definition(full_block(), region="r"), rq.build_task_definition(full_block(), region="r")
    assert a == b and a["family"] == b["family"]
    assert rq.task_definition_digest(a) == rq.task_definition_digest(b)


@pytest.mark.parametrize("change", [{"image": "other:2"}, {"cpu": 4096}, {"secrets": {}}, {"tags": {"team": "x"}}])
def test_different_content_gives_different_family(change):
    a = rq.build_task_definition(full_block(), region="r")
    b = rq.build_task_definition(full_block(**change), region="r")
    assert a["family"] != b["family"] and rq.task_definition_digest(a) != rq.task_definition_digest(b)


def test_per_run_values_never_reach_the_task_definition():
    plain = rq.build_task_definition(full_block(), region="r")
    per_run = full_block(
        name="crimson-otter", labels={"run": "42"}, env={"RUN_SECRET_SAUCE": "xyz-42"}, command=["echo", "per-run"]
    )
    td = rq.build_task_definition(per_run, region="r")
    assert td == plain
    text = json.dumps(td)
    for value in ("crimson-otter", "xyz-42", "per-run", RUN_ID):
        assert value not in text


def test_user_task_definition_is_the_base():
    user_td = {
        "family": "My Team/Flows",
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/x:3",
        "revision": 3,
        "status": "ACTIVE",
        "compatibilities": ["EC2", "FARGATE"],
        "containerDefinitions": [
            {"name": "flow", "image": "base:1", "environment": [{"name": "DROP", "value": "1"}, {"name": "KEEP", "value": "2"}]},
            {"name": "sidecar", "image": "datadog/agent", "memory": 256},
        ],
        "volumes": [{"name": "scratch"}],
    }
    td = rq.build_task_definition(ECSTask(task_definition=user_td, env={"DROP": None}, cpu=1024, memory=4096))
    assert td["family"].startswith("fleetflow-My-Team-Flows-")
    assert not {"taskDefinitionArn", "revision", "status", "compatibilities"} & set(td)
    flow = rq.find_container(td["containerDefinitions"], "flow")
    assert flow["image"] == "base:1" and flow["environment"] == [{"name": "KEEP", "value": "2"}]
    assert "memory" not in flow  # sidecars present: the user sizes containers
    assert rq.find_container(td["containerDefinitions"], "sidecar") == user_td["containerDefinitions"][1]
    assert td["volumes"] == [{"name": "scratch"}] and td["memory"] == "4096"


def test_default_image_when_none_given():
    td = rq.build_task_definition(ECSTask())
    assert td["containerDefinitions"][0]["image"].startswith("fleetflow/fleetflow:")


def test_task_definition_arn_means_no_registration():
    plan = rq.plan_task_definition(ECSTask(task_definition_arn="arn:aws:ecs:us-east-1:1:task-definition/mine:7"))
    assert plan.arn.endswith("mine:7") and plan.request is None and plan.family is None
    plan = rq.plan_task_definition(ECSTask(image="img"))
    assert plan.arn is None and plan.family == plan.request["family"]


# --- comparing registered with wanted ----------------------------------------------------------
def described(td: dict) -> dict:
    """What DescribeTaskDefinition returns for ``td``: AWS defaults and read-only fields added."""
    out = json.loads(json.dumps(td))
    out.pop("tags", None)
    out.update({"taskDefinitionArn": "arn:...:1", "revision": 1, "status": "ACTIVE", "volumes": [], "compatibilities": ["EC2", "FARGATE"]})
    for c in out["containerDefinitions"]:
        c.update({"portMappings": [], "environment": [], "mountPoints": [], "volumesFrom": []})
    return out


def test_registered_definition_with_aws_defaults_matches():
    wanted = rq.build_task_definition(full_block(), region="r")
    assert rq.task_definitions_match(described(wanted), wanted)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["containerDefinitions"][0].update(image="evil:1"),
        lambda d: d.update(cpu="4096"),
        lambda d: d["containerDefinitions"][0].update(name="other"),
        lambda d: d["containerDefinitions"][0].pop("secrets"),
        lambda d: d.update(executionRoleArn="arn:aws:iam::123456789012:role/other"),
    ],
)
def test_registered_definition_that_differs_does_not_match(mutate):
    wanted = rq.build_task_definition(full_block(), region="r")
    registered = described(wanted)
    mutate(registered)
    assert not rq.task_definitions_match(registered, wanted)


def test_match_ignores_order_of_compatibilities_and_number_types():
    wanted = {"requiresCompatibilities": ["FARGATE", "EC2"], "cpu": "1024", "containerDefinitions": [{"name": "flow", "memory": 2048}]}
    registered = {"requiresCompatibilities": ["EC2", "FARGATE"], "cpu": 1024, "containerDefinitions": [{"name": "flow", "memory": "2048"}]}
    assert rq.task_definitions_match(registered, wanted)


# --- RunTask ------------------------------------------------------------------------------------
def test_run_task_request_carries_per_run_values_in_overrides_only():
    block = full_block(env={"MODE": "fast", "FLEETFLOW_LOGGING_LEVEL": "DEBUG"}, labels={"flow": "train"}, cluster="ml")
    req = run_request(block, env={"FLEETFLOW_FLOW_RUN_ID": RUN_ID, "FLEETFLOW_LOGGING_LEVEL": "INFO"})
    flow = flow_override(req)
    assert flow["name"] == "flow"
    assert flow["environment"] == [
        {"name": "FLEETFLOW_FLOW_RUN_ID", "value": RUN_ID},
        {"name": "FLEETFLOW_LOGGING_LEVEL", "value": "DEBUG"},  # the block's env wins
        {"name": "MODE", "value": "fast"},
    ]
    assert flow["command"] == ["python", "-m", "fleetflow.runner", RUN_ID]
    assert (flow["cpu"], flow["memory"]) == (2048, 8192)
    assert (req["overrides"]["cpu"], req["overrides"]["memory"]) == ("2048", "8192")
    assert req["overrides"]["taskRoleArn"] == TASK_ROLE and req["overrides"]["executionRoleArn"] == EXEC_ROLE
    assert req["clientToken"] == f"fleetflow-{RUN_ID}-1" and req["startedBy"] == "fleetflow-worker"
    assert {"key": "flow", "value": "train"} in req["tags"]
    assert {"key": "fleetflow:flow-run-id", "value": RUN_ID} in req["tags"]
    assert {"key": "fleetflow:deployment", "value": "train/gpu"} in req["tags"]
    assert req["propagateTags"] == "TASK_DEFINITION" and req["enableECSManagedTags"] is True
    assert req["launchType"] == "FARGATE" and "capacityProviderStrategy" not in req
    assert req["cluster"] == "ml"


def test_env_none_unsets_a_runtime_variable():
    req = run_request(ECSTask(env={"FLEETFLOW_FLOW_RUN_ID": None}))
    assert flow_override(req)["environment"] == []


def test_fargate_spot_is_a_capacity_provider():
    req = run_request(ECSTask(launch_type="FARGATE_SPOT"))
    assert req["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert "launchType" not in req


def test_capacity_provider_strategy_is_sent_as_given():
    strategy = [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 4}]
    req = run_request(ECSTask(capacity_provider_strategy=strategy))
    assert req["capacityProviderStrategy"] == strategy and "launchType" not in req


def test_network_configuration_from_fields():
    block = ECSTask(subnets=["subnet-a", "subnet-b"], security_groups=["sg-1"], assign_public_ip=False)
    net = rq.build_network_configuration(block, ["subnet-discovered"])
    assert net == {"awsvpcConfiguration": {"subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}}
    discovered = rq.build_network_configuration(ECSTask(), ["subnet-d"])["awsvpcConfiguration"]
    assert discovered == {"subnets": ["subnet-d"], "securityGroups": [], "assignPublicIp": "ENABLED"}


def test_ec2_bridge_mode_needs_no_network_configuration():
    block = ECSTask(launch_type="EC2")
    assert not rq.needs_network_configuration(block, rq.build_task_definition(block))
    assert rq.needs_network_configuration(ECSTask(), None)
    req = run_request(block, network_configuration=None)
    assert req["launchType"] == "EC2" and "networkConfiguration" not in req


def test_with_task_definition_arn_sizes_are_only_overridden_when_set():
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/mine:7"
    req = run_request(ECSTask(task_definition_arn=arn, tags={"team": "ml"}), task_definition_arn=arn)
    assert "cpu" not in req["overrides"] and "memory" not in flow_override(req)
    assert {"key": "team", "value": "ml"} in req["tags"]  # no task definition to propagate them
    req = run_request(ECSTask(task_definition_arn=arn, memory=4096), task_definition_arn=arn)
    assert req["overrides"]["memory"] == "4096" and "cpu" not in req["overrides"]


# --- task customizations --------------------------------------------------------------------------
def test_customizations_are_applied_last_to_the_whole_request():
    patch = [
        {"op": "replace", "path": "/networkConfiguration/awsvpcConfiguration/assignPublicIp", "value": "DISABLED"},
        {"op": "add", "path": "/platformVersion", "value": "1.4.0"},
        {"op": "add", "path": "/overrides/containerOverrides/0/environment/-", "value": {"name": "X", "value": "1"}},
        {"op": "replace", "path": "/launchType", "value": "EC2"},
    ]
    req = run_request(ECSTask(task_customizations=patch))
    assert req["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
    assert req["platformVersion"] == "1.4.0" and req["launchType"] == "EC2"
    assert flow_override(req)["environment"][-1] == {"name": "X", "value": "1"}


def test_customizations_as_json_string():
    text = json.dumps([{"op": "add", "path": "/platformVersion", "value": "LATEST"}])
    block = ECSTask(task_customizations=text)
    assert block.task_customizations == json.loads(text)
    assert run_request(block)["platformVersion"] == "LATEST"


def test_customizations_as_jsonpatch_object():
    import jsonpatch

    block = ECSTask(task_customizations=jsonpatch.JsonPatch([{"op": "add", "path": "/count", "value": 1}]))
    assert run_request(block)["count"] == 1


@pytest.mark.parametrize(
    "patch,needle",
    [
        ([{"op": "add", "path": "/a", "value": 1}, {"op": "frobnicate", "path": "/b"}], "task_customizations[1] (op='frobnicate', path='/b')"),
        ([{"op": "add", "path": "no-slash", "value": 1}], "task_customizations[0] (op='add', path='no-slash')"),
        ([{"op": "replace", "path": "/launchType"}], "needs a 'value'"),
        ([{"op": "move", "path": "/x"}], "needs a 'from'"),
        (["not-an-op"], "task_customizations[0] must be an object"),
        ({"op": "add"}, "must be a list"),
        ("[{not json", "not valid JSON"),
    ],
)
def test_malformed_customizations_are_rejected(patch, needle):
    with pytest.raises(TaskCustomizationError) as err:
        rq.parse_task_customizations(patch)
    assert needle in str(err.value) and err.value.field == "task_customizations"


@pytest.mark.parametrize(
    "patch,needle",
    [
        ([{"op": "replace", "path": "/does/not/exist", "value": 1}], "task_customizations[0] (op='replace', path='/does/not/exist')"),
        ([{"op": "add", "path": "/a", "value": 1}, {"op": "remove", "path": "/nope"}], "task_customizations[1] (op='remove', path='/nope')"),
        ([{"op": "test", "path": "/launchType", "value": "EC2"}], "task_customizations[0] (op='test', path='/launchType')"),
        ([{"op": "add", "path": "/overrides/containerOverrides/5/command", "value": []}], "task_customizations[0] (op='add'"),
    ],
)
def test_customizations_that_do_not_apply_name_the_operation(patch, needle):
    with pytest.raises(TaskCustomizationError) as err:
        rq.apply_task_customizations(run_request(ECSTask()), patch)
    assert needle in str(err.value) and "does not apply" in str(err.value)


# --- limits ---------------------------------------------------------------------------------------
def test_overrides_over_8192_characters_are_rejected_before_sending():
    block = ECSTask()
    base = rq.overrides_size(run_request(block, env={"BIG": ""}))
    fits = run_request(block, env={"BIG": "x" * (rq.OVERRIDES_CHAR_LIMIT - base)})
    assert rq.overrides_size(fits) == 8192
    with pytest.raises(OverridesTooLargeError) as err:
        run_request(block, env={"BIG": "x" * (rq.OVERRIDES_CHAR_LIMIT - base + 1)})
    assert "8193 characters" in str(err.value) and "env BIG" in str(err.value) and "secrets" in str(err.value)


def test_overrides_size_counts_compact_json():
    req = {"overrides": {"containerOverrides": [{"name": "flow", "environment": []}]}}
    assert rq.overrides_size(req) == len('{"containerOverrides":[{"name":"flow","environment":[]}]}')


def test_client_token_is_deterministic_and_fits():
    assert rq.make_client_token(RUN_ID, 1) == rq.make_client_token(RUN_ID, 1)
    assert rq.make_client_token(RUN_ID, 1) != rq.make_client_token(RUN_ID, 2)
    long_token = rq.make_client_token("x" * 100, 3)
    assert len(long_token) == 64 and long_token == rq.make_client_token("x" * 100, 3)
    assert len(rq.make_client_token(RUN_ID, 10**6)) <= 64


@pytest.mark.parametrize("field,kw", [("started_by", {"started_by": "x" * 37}), ("client_token", {"client_token": "x" * 65}), ("client_token", {"client_token": ""})])
def test_token_limits(field, kw):
    with pytest.raises(ECSConfigError) as err:
        run_request(ECSTask(), **kw)
    assert err.value.field == field


# --- secrets ------------------------------------------------------------------------------------
def test_secrets_never_appear_in_the_environment():
    block = full_block(secrets={"DB_PASSWORD": "/prod/db/password", "API_TOKEN": "arn:aws:ssm:us-east-1:123456789012:parameter/api"})
    req = run_request(block)
    names = {e["name"] for e in flow_override(req)["environment"]}
    assert not names & set(block.secrets)
    assert "/prod/db/password" not in json.dumps(req["overrides"])
    td = rq.build_task_definition(block, region="r")
    assert {s["name"] for s in td["containerDefinitions"][0]["secrets"]} == {"DB_PASSWORD", "API_TOKEN"}


def test_runtime_env_cannot_shadow_a_secret():
    block = full_block(secrets={"DB_PASSWORD": "/prod/db/password"})
    with pytest.raises(ECSConfigError) as err:
        run_request(block, env={"DB_PASSWORD": "hunter2"})
    assert "DB_PASSWORD" in str(err.value) and "hunter2" not in str(err.value) and err.value.field == "env"


def test_customization_cannot_sneak_a_secret_into_the_environment():
    patch = [{"op": "add", "path": "/overrides/containerOverrides/0/environment/-", "value": {"name": "DB_PASSWORD", "value": "x"}}]
    block = full_block(secrets={"DB_PASSWORD": "/prod/db/password"}, task_customizations=[])
    block = block.model_copy(update={"task_customizations": patch})
    with pytest.raises(ECSConfigError):
        run_request(block)


def test_builders_do_not_import_boto3():
    code = (
        "import sys; import fleetflow.aws, fleetflow.aws.ecs_requests, fleetflow.aws.ecs;"
        "bad = [m for m in ('boto3', 'botocore', 'aiobotocore') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "kw,field",
    [
        ({"tags": {"aws:reserved": "x"}}, "tags"),
        ({"tags": {"k": "v" * 257}}, "tags"),
        ({"labels": {f"l{i}": "v" for i in range(50)}}, "labels"),  # + the flow-run-id tag = 51
    ],
)
def test_tag_limits_are_checked(kw, field):
    with pytest.raises(ECSConfigError) as err:
        ECSTask(**kw)
    assert err.value.field == field


def test_unparsable_size_in_user_task_definition_names_the_field():
    with pytest.raises(ECSConfigError) as err:
        ECSTask(task_definition={"cpu": "1 vCPU"})
    assert err.value.field == "task_definition.cpu"
