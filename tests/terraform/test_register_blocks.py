"""`fleetflow aws register-blocks --from-terraform` on a real `terraform apply` of
examples/ecs-subflows against moto's server: the saved blocks must point at (and reach) what
Terraform created. One apply (~15 s) and one destroy (~25 s) for the module.

The example's default path (the fleetflow server): flow runs get no database-URL secret, and
register-blocks also runs over HTTP against a real server on 127.0.0.1 with an admin key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from terraform_helpers import boto3_clients, copy_example, example_vars, moto_server, plain_outputs, server_vars
from typer.testing import CliRunner

from fleetflow.aws import S3, AwsCredentials, ECSTask
from fleetflow.aws.terraform import register_blocks_from_terraform
from fleetflow.cli import app
from fleetflow.orchestrator import Orchestrator
from fleetflow.testing import temporary_store

if TYPE_CHECKING:
    from .conftest import Terraform

pytestmark = pytest.mark.terraform

NAME = "ffreg"  # not test_terraform.py's "fftest": each module has its own moto server anyway
POOL = "ecs-reg"


@dataclass
class Applied:
    directory: Path
    endpoint: str
    outputs: dict[str, Any]
    aws: dict[str, Any]


@pytest.fixture(scope="module")
def applied(terraform: Terraform, tf_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    with moto_server() as endpoint:
        example = copy_example(tf_copy, tmp_path_factory.mktemp("register-blocks"))
        tf_vars = example_vars(endpoint, name=NAME, work_pool_name=POOL, **server_vars(endpoint, terraform.env))
        terraform.run("init", "-input=false", "-no-color", cwd=example)
        terraform.run("apply", "-auto-approve", "-input=false", "-no-color", *tf_vars, cwd=example)
        try:
            yield Applied(example, endpoint, plain_outputs(terraform, example), boto3_clients(endpoint, terraform.env))
        finally:
            terraform.run("destroy", "-auto-approve", "-input=false", "-no-color", *tf_vars, cwd=example)


@pytest.fixture
def tf_env(terraform: Terraform, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a user's shell would have: terraform on hand, and AWS keys (moto accepts any) for the
    saved blocks' clients, which take them from the default chain."""
    monkeypatch.setenv("TERRAFORM", terraform.binary)
    for name in ("TF_CLI_CONFIG_FILE", "TF_IN_AUTOMATION", "CHECKPOINT_DISABLE", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"):  # fmt: skip
        monkeypatch.setenv(name, terraform.env[name])
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def _check_blocks_point_at_terraform_resources(applied: Applied, prefix: str) -> None:
    out, aws = applied.outputs, applied.aws
    creds = AwsCredentials.load(f"{prefix}-aws")
    assert creds.region_name == out["region"] == "us-east-1"
    assert creds.aws_access_key_id is None and creds.aws_secret_access_key is None

    ecs = ECSTask.load(f"{prefix}-ecs")
    assert ecs.cluster == out["cluster_arn"]
    assert ecs.subnets == out["subnet_ids"] and len(ecs.subnets) == 2
    assert ecs.security_groups == [out["security_group_id"]]
    assert (ecs.vpc_id, ecs.assign_public_ip) == (out["vpc_id"], False)
    assert (ecs.execution_role_arn, ecs.task_role_arn) == (out["execution_role_arn"], out["task_role_arn"])
    assert ecs.image == out["image"]
    assert ecs.cloudwatch_logs_options["awslogs-group"] == out["log_group_name"]
    # With the server, flow runs reach it with per-run tokens: no database URL for them at all.
    assert out.get("database_url_secret_arn") is None and out["api_url"].startswith("https://")
    assert "FLEETFLOW_DATABASE_URL" not in (ecs.secrets or {})

    # The saved credentials reach moto and find the cluster Terraform created.
    cluster = ecs.aws_credentials.get_client("ecs").describe_clusters(clusters=[ecs.cluster])["clusters"]
    assert [(c["clusterName"], c["status"]) for c in cluster] == [(NAME, "ACTIVE")]
    subnets = aws["ec2"].describe_subnets(SubnetIds=ecs.subnets)["Subnets"]
    assert {s["VpcId"] for s in subnets} == {ecs.vpc_id}
    group = aws["ec2"].describe_security_groups(GroupIds=ecs.security_groups)["SecurityGroups"][0]
    assert group["VpcId"] == ecs.vpc_id
    for arn in (ecs.execution_role_arn, ecs.task_role_arn):
        assert aws["iam"].get_role(RoleName=arn.rsplit("/", 1)[1])["Role"]["Arn"] == arn
    groups = aws["logs"].describe_log_groups(logGroupNamePrefix=out["log_group_name"])["logGroups"]
    assert [g["logGroupName"] for g in groups] == [out["log_group_name"]]
    # The task definition a launch would register is accepted by (moto's) ECS.
    registered = aws["ecs"].register_task_definition(**ecs.preview()["task_definition"])["taskDefinition"]
    assert registered["executionRoleArn"] == out["execution_role_arn"]
    assert registered["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"] == out["log_group_name"]

    # The code block names the Terraform bucket, and its credentials reach it. (No object round
    # trip: the bucket policy denies requests without TLS, and moto enforces that on plain http.)
    storage = S3.load(f"{prefix}-code")
    assert storage.bucket_path == out["bucket_path"] == f"{out['bucket_name']}/bundles"
    assert storage.location() == f"s3://{out['bucket_name']}/bundles"
    storage.credentials.get_client("s3").head_bucket(Bucket=out["bucket_name"])

def test_register_blocks_from_an_applied_example(applied: Applied, tf_env, api_server, tmp_path: Path) -> None:
    """The Python API, the CLI, then the CLI over HTTP (each on its own empty store), on one apply.

    One test rather than several: xdist would spread several over workers, each applying the
    example again (and `--dist loadgroup` does not group tests under pytest 9 / xdist 3.8).
    """
    endpoint = {"endpoint_url": applied.endpoint}
    with temporary_store() as store:
        result = register_blocks_from_terraform(applied.directory, prefix="reg", aws_client_parameters=endpoint)
        assert [(i.ref, i.status) for i in result.items] == [
            ("aws-credentials/reg-aws", "created"),
            ("s3/reg-code", "created"),
            ("s3/reg-results", "created"),
            ("ecs-task/reg-ecs", "created"),
            (POOL, "created"),
        ]
        pool = store.read_work_pool(POOL)
        assert (pool.type, pool.infrastructure_block) == ("ecs", "ecs-task/reg-ecs")
        _check_blocks_point_at_terraform_resources(applied, "reg")

        again = register_blocks_from_terraform(applied.directory, prefix="reg", aws_client_parameters=endpoint)
        assert [i.status for i in again.items] == ["unchanged"] * 5

    with temporary_store():
        _check_cli(applied, tmp_path)

    _check_cli_over_http(applied, api_server, tmp_path)


def _check_cli_over_http(applied: Applied, api_server: Any, tmp_path: Path) -> None:
    """With FLEETFLOW_API_URL and an admin FLEETFLOW_API_KEY, the blocks go through the server."""
    store = Orchestrator.create(f"sqlite:///{tmp_path / 'server.db'}")
    try:
        _key, admin = store.create_api_key("register-admin", "admin")
        api_server.use_store(store)
        with temporary_store(api_url=api_server.url, api_key=admin):
            args = ["aws", "register-blocks", "--prefix", "http", "--endpoint-url", applied.endpoint, "--json"]
            result = CliRunner().invoke(app, [*args, "--from-terraform", str(applied.directory)])
            assert result.exit_code == 0, result.output
            assert [item["status"] for item in json.loads(result.stdout)] == ["created"] * 5
            _check_blocks_point_at_terraform_resources(applied, "http")  # loaded over HTTP
        # At rest in the server's own store, written by the admin key's requests.
        assert store.read_work_pool(POOL).infrastructure_block == "ecs-task/http-ecs"
        assert {entry["actor"] for entry in store.read_audit(limit=1000)} == {"register-admin"}
    finally:
        store.dispose()


def _check_cli(applied: Applied, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["aws", "register-blocks", "--prefix", "cli", "--endpoint-url", applied.endpoint]
    first = runner.invoke(app, [*args, "--from-terraform", str(applied.directory)], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "ecs-task/cli-ecs" in first.stdout and "created" in first.stdout
    assert f"fleetflow work-pool inspect {POOL}" in first.stdout
    _check_blocks_point_at_terraform_resources(applied, "cli")

    # The same outputs written to a file (`terraform output -json > outputs.json`) change nothing.
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps({k: {"value": v, "sensitive": False} for k, v in applied.outputs.items()}))
    second = runner.invoke(app, [*args, "--from-terraform", str(outputs_file), "--json"])
    assert second.exit_code == 0, second.output
    assert [item["status"] for item in json.loads(second.stdout)] == ["unchanged"] * 5
