"""Every request we build is valid for botocore's ECS service model, and moto's ECS accepts it.

The service-model tests catch a misspelt key or a wrong type (string vs int) that would
otherwise surface only as a ParamValidationError in the worker. The moto test sends the
requests over HTTP to moto's server, as the worker would (no moto internals patched).
"""

from __future__ import annotations

import socket
from typing import Iterator

import pytest

from fleetflow.aws import ECSTask
from fleetflow.aws import ecs as ecs_module
from fleetflow.aws import ecs_requests as rq

botocore_session = pytest.importorskip("botocore.session")
from botocore.validate import ParamValidator  # noqa: E402

EXEC_ROLE = "arn:aws:iam::123456789012:role/fleetflow-exec"
TASK_ROLE = "arn:aws:iam::123456789012:role/fleetflow-task"
RUN_ID = "6f1c1e2a-0000-4000-8000-000000000001"

BLOCKS = {
    "fargate-defaults": dict(),
    "fargate-full": dict(
        image="img:1",
        cpu=4096,
        memory=16384,
        execution_role_arn=EXEC_ROLE,
        task_role_arn=TASK_ROLE,
        stream_output=True,
        aws_credentials={"region_name": "eu-west-1"},
        subnets=["subnet-1", "subnet-2"],
        security_groups=["sg-1"],
        assign_public_ip=False,
        env={"MODE": "fast", "UNSET": None},
        labels={"flow": "train"},
        tags={"team": "ml", "cost-center": "42"},
        cluster="ml",
    ),
    "fargate-spot": dict(launch_type="FARGATE_SPOT", cpu=256, memory=512),
    "capacity-providers": dict(
        capacity_provider_strategy=[{"capacityProvider": "FARGATE", "weight": 1, "base": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 3}]
    ),
    "ec2-gpu": dict(launch_type="EC2", gpu=1, cpu=4096, memory=30000, image="nvidia/cuda:12.4.0-runtime-ubuntu22.04"),
    "ec2-awsvpc": dict(launch_type="EC2", subnets=["subnet-1"], cpu=512, memory=512),
    "external": dict(launch_type="EXTERNAL"),
    "runtime-platform": dict(runtime_platform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}),
    "secrets": dict(
        execution_role_arn=EXEC_ROLE,
        secrets={
            "DB_PASSWORD": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
            "API_TOKEN": "/prod/api/token",
        },
    ),
    "ephemeral-storage": dict(ephemeral_storage_gib=100),
    "user-task-definition": dict(
        task_definition={
            "family": "base",
            "containerDefinitions": [{"name": "flow", "image": "base:1"}, {"name": "sidecar", "image": "envoy", "memory": 128}],
            "volumes": [{"name": "scratch"}],
        }
    ),
    "customized": dict(
        task_customizations=[
            {"op": "add", "path": "/platformVersion", "value": "1.4.0"},
            {"op": "add", "path": "/overrides/ephemeralStorage", "value": {"sizeInGiB": 30}},
        ]
    ),
}


@pytest.fixture(scope="module")
def ecs_model():
    return botocore_session.get_session().get_service_model("ecs")


def assert_valid(ecs_model, operation: str, params: dict) -> None:
    report = ParamValidator().validate(params, ecs_model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def run_request_for(block: ECSTask, task_definition: dict | None, arn: str) -> dict:
    network = None
    if rq.needs_network_configuration(block, task_definition):
        network = rq.build_network_configuration(block, ["subnet-discovered"])
    return rq.build_run_task_request(
        block,
        task_definition_arn=arn,
        flow_run_id=RUN_ID,
        env={"FLEETFLOW_FLOW_RUN_ID": RUN_ID},
        command=rq.default_command(RUN_ID),
        network_configuration=network,
        client_token=rq.make_client_token(RUN_ID, 1),
        started_by="fleetflow",
        tags={"fleetflow:worker": "w1"},
    )


@pytest.mark.parametrize("kw", BLOCKS.values(), ids=BLOCKS.keys())
def test_register_task_definition_request_matches_service_model(ecs_model, kw):
    td = rq.build_task_definition(ECSTask(**kw), region="us-east-1")
    assert_valid(ecs_model, "RegisterTaskDefinition", td)


@pytest.mark.parametrize("kw", BLOCKS.values(), ids=BLOCKS.keys())
def test_run_task_request_matches_service_model(ecs_model, kw):
    block = ECSTask(**kw)
    td = rq.build_task_definition(block, region="us-east-1")
    req = run_request_for(block, td, rq.placeholder_task_definition_arn("us-east-1", td["family"]))
    assert_valid(ecs_model, "RunTask", req)


def test_run_task_with_registered_arn_matches_service_model(ecs_model):
    block = ECSTask(task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/mine:3", memory=4096)
    assert_valid(ecs_model, "RunTask", run_request_for(block, None, block.task_definition_arn))


def test_preview_requests_match_service_model(ecs_model):
    preview = ECSTask(**BLOCKS["fargate-full"]).preview()
    assert_valid(ecs_model, "RegisterTaskDefinition", preview["task_definition"])
    assert_valid(ecs_model, "RunTask", preview["run_task_request"])


def test_our_enums_match_the_service_model(ecs_model):
    shapes = ecs_model.shape_for
    assert set(ecs_module.CPU_ARCHITECTURES) == set(shapes("CPUArchitecture").enum)
    assert set(ecs_module.OS_FAMILIES) <= set(shapes("OSFamily").enum)
    launch_types = set(ECSTask.model_fields["launch_type"].annotation.__args__[0].__args__)
    assert launch_types - {"FARGATE_SPOT"} <= set(shapes("LaunchType").enum)


# --- moto server ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def moto_clients() -> Iterator[dict]:
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        kw = dict(
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        yield {"ecs": boto3.client("ecs", **kw), "ec2": boto3.client("ec2", **kw)}
    finally:
        server.stop()


def _network(ec2) -> tuple[str, str]:
    """A VPC with DNS hostnames (moto's Fargate RunTask needs them), a subnet and a security group."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="fleetflow", Description="fleetflow tasks", VpcId=vpc)["GroupId"]
    return subnet, group


@pytest.mark.aws
def test_built_requests_are_accepted_by_moto(moto_clients):
    ecs, ec2 = moto_clients["ecs"], moto_clients["ec2"]
    subnet, group = _network(ec2)
    ecs.create_cluster(clusterName="ml")
    block = ECSTask(
        image="python:3.12-slim",
        cpu=1024,
        memory=4096,
        cluster="ml",
        subnets=[subnet],
        security_groups=[group],
        execution_role_arn=EXEC_ROLE,
        task_role_arn=TASK_ROLE,
        stream_output=True,
        secrets={"DB_PASSWORD": "/prod/db/password"},
        env={"MODE": "fast"},
        labels={"flow": "train"},
        tags={"team": "ml"},
    )
    td = rq.build_task_definition(block, region="us-east-1")
    registered = ecs.register_task_definition(**td)["taskDefinition"]
    assert registered["family"] == td["family"]
    described = ecs.describe_task_definition(taskDefinition=td["family"], include=["TAGS"])
    assert rq.task_definitions_match(described["taskDefinition"], td)
    assert described["tags"] == [{"key": "team", "value": "ml"}]

    req = run_request_for(block, td, registered["taskDefinitionArn"])
    response = ecs.run_task(**req)
    assert response["failures"] == []
    (task,) = response["tasks"]
    assert task["taskDefinitionArn"] == registered["taskDefinitionArn"]
    flow = task["overrides"]["containerOverrides"][0]
    assert flow["name"] == "flow" and flow["command"] == rq.default_command(RUN_ID)
    assert {"name": "MODE", "value": "fast"} in flow["environment"]
    assert {"name": "FLEETFLOW_FLOW_RUN_ID", "value": RUN_ID} in flow["environment"]
    assert task["overrides"]["cpu"] == "1024" and task["overrides"]["memory"] == "4096"
    tags = {t["key"]: t["value"] for t in task["tags"]}
    assert tags["flow"] == "train" and tags["fleetflow:flow-run-id"] == RUN_ID and tags["fleetflow:worker"] == "w1"
    assert task["startedBy"] == "fleetflow"


@pytest.mark.aws
def test_fargate_spot_and_ec2_requests_are_accepted_by_moto(moto_clients):
    ecs, ec2 = moto_clients["ecs"], moto_clients["ec2"]
    subnet, group = _network(ec2)
    ecs.create_cluster(clusterName="spot", capacityProviders=["FARGATE", "FARGATE_SPOT"])
    block = ECSTask(image="python:3.12-slim", launch_type="FARGATE_SPOT", cluster="spot", subnets=[subnet], security_groups=[group])
    td = rq.build_task_definition(block)
    arn = ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]
    response = ecs.run_task(**run_request_for(block, td, arn))
    assert response["failures"] == [] and len(response["tasks"]) == 1
