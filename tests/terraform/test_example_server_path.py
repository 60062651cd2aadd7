"""examples/ecs-subflows on its default path (the fleetflow server, ``modules/server`` behind an
HTTPS ALB), applied once against moto's server for this module: what Terraform created, a second
plan, `fleetflow aws register-blocks --from-terraform` (Python API, CLI, CLI over HTTP), and the
proof over HTTP (tests/proof_pipeline.py); the destroy is checked when the apply is torn down.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from backends import backend_params
from proof_pipeline import Timeline, run_the_pipeline
from terraform_helpers import EXAMPLE_OUTPUTS
from typer.testing import CliRunner

from fleetflow.aws import S3, AwsCredentials, ECSTask
from fleetflow.aws.terraform import register_blocks_from_terraform
from fleetflow.cli import app
from fleetflow.orchestrator import Orchestrator
from fleetflow.testing import temporary_store

if TYPE_CHECKING:
    from terraform_helpers import AppliedExample

# One worker runs this module: its tests share one apply (terraform_helpers.AppliedExample says why).
pytestmark = [pytest.mark.terraform, pytest.mark.aws, pytest.mark.timeout(300), pytest.mark.xdist_group("tf-server")]

# Differences moto introduces on re-plan (it does not store these attributes); anything else in a
# second plan is a real perpetual diff in our code.
MOTO_PLAN_NOISE = {
    ("module.worker.aws_ecs_service.this", "enable_ecs_managed_tags"),
    ("module.server[0].aws_ecs_service.this", "enable_ecs_managed_tags"),
    # the server's RDS (create_database): moto 5.2 has no Performance Insights attribute, and
    # stores a parameter group's parameters without the `Source: user` the provider reads back
    ("module.server[0].aws_db_instance.this[0]", "performance_insights_enabled"),
    ("module.server[0].aws_db_parameter_group.this[0]", "parameter"),
}


def _inject_secrets(aws: dict, role_arn: str, policy_name: str) -> list[str]:
    """Secrets Manager ARNs the role's inline policy lets ECS inject (its InjectSecrets statement)."""
    doc = aws["iam"].get_role_policy(RoleName=role_arn.rsplit("/", 1)[1], PolicyName=policy_name)["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    (statement,) = [s for s in doc["Statement"] if s.get("Sid") == "InjectSecrets"]
    resources = statement["Resource"]
    return sorted([resources] if isinstance(resources, str) else resources)


def _check_server(aws: dict, outputs: dict) -> None:
    """The server service behind the ALB: its own execution role reads the database URL and the
    encryption key (and only the server's task definition references them)."""
    service = aws["ecs"].describe_services(cluster=outputs["cluster_arn"], services=[outputs["server_service_name"]])["services"][0]
    assert service["status"] == "ACTIVE" and service["launchType"] == "FARGATE"
    assert [lb["containerName"] for lb in service["loadBalancers"]] == ["server"]
    task_def = aws["ecs"].describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    (container,) = task_def["containerDefinitions"]
    assert container["command"][:3] == ["fleetflow", "server", "start"]
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert secrets == {"FLEETFLOW_DATABASE_URL": outputs["server_database_url_secret_arn"],
                       "FLEETFLOW_ENCRYPTION_KEY": outputs["encryption_key_secret_arn"]}  # fmt: skip
    assert task_def["executionRoleArn"] != outputs["execution_role_arn"]
    assert _inject_secrets(aws, task_def["executionRoleArn"], "fleetflow-server-execution") == sorted(secrets.values())
    elbv2 = aws["elbv2"]
    (alb,) = elbv2.describe_load_balancers(Names=[outputs["server_service_name"]])["LoadBalancers"]
    assert (alb["DNSName"], alb["Scheme"]) == (outputs["alb_dns_name"], "internal")
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=alb["LoadBalancerArn"])["Listeners"]
    assert (listener["Port"], listener["Protocol"]) == (443, "HTTPS")


def _check_database(aws: dict, outputs: dict) -> None:
    """modules/server with create_database = true: an encrypted, private RDS PostgreSQL in the
    flow-run subnets, reachable on 5432 from the server tasks only, its URL (the generated
    password, TLS required) in the server's database secret as Terraform wrote it."""
    (db,) = aws["rds"].describe_db_instances(DBInstanceIdentifier=f"{outputs['cluster_name']}-server")["DBInstances"]
    assert (db["Engine"], db["StorageEncrypted"], db["PubliclyAccessible"]) == ("postgres", True, False)
    assert db["BackupRetentionPeriod"] == 7 and db["DeletionProtection"] is False
    assert sorted(s["SubnetIdentifier"] for s in db["DBSubnetGroup"]["Subnets"]) == sorted(outputs["subnet_ids"])
    (group_id,) = [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]]
    (group,) = aws["ec2"].describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    (ingress,) = group["IpPermissions"]
    assert (ingress["FromPort"], ingress["ToPort"], ingress["IpRanges"]) == (5432, 5432, [])
    service = aws["ecs"].describe_services(cluster=outputs["cluster_arn"], services=[outputs["server_service_name"]])["services"][0]
    server_groups = service["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"]
    assert [p["GroupId"] for p in ingress["UserIdGroupPairs"]] == server_groups  # the server tasks, nothing else
    host = f"{db['Endpoint']['Address']}:{db['Endpoint']['Port']}"
    assert outputs["database_endpoint"] == host
    secret_id = outputs["server_database_url_secret_arn"]
    versions = aws["secretsmanager"].list_secret_version_ids(SecretId=secret_id)["Versions"]
    first = min(versions, key=lambda v: v["CreatedDate"])  # Terraform's (the proof may put its own later)
    url = aws["secretsmanager"].get_secret_value(SecretId=secret_id, VersionId=first["VersionId"])["SecretString"]
    assert url.startswith("postgresql+psycopg://fleetflow:") and url.endswith(f"@{host}/fleetflow?sslmode=require")
    assert len(url.split(":", 2)[2].split("@")[0]) == 32  # the generated password (uuid() without dashes)


def test_what_terraform_created(server_example: AppliedExample) -> None:
    outputs, aws = server_example.outputs, server_example.aws
    # -- outputs map onto block fields -------------------------------------------------------
    assert EXAMPLE_OUTPUTS <= outputs.keys()
    assert outputs["region"] == "us-east-1"
    assert outputs["work_pool_name"] == server_example.pool
    assert outputs["cluster_name"] == server_example.name
    assert outputs["bucket_path"] == f"{outputs['bucket_name']}/bundles"
    assert len(outputs["subnet_ids"]) == 2

    # -- cluster and logs ------------------------------------------------------------------
    cluster = aws["ecs"].describe_clusters(clusters=[outputs["cluster_arn"]], include=["SETTINGS"])["clusters"][0]
    assert cluster["status"] == "ACTIVE"
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]
    groups = aws["logs"].describe_log_groups(logGroupNamePrefix=outputs["log_group_name"])["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [(outputs["log_group_name"], 30)]

    # -- network: tasks in private subnets, egress-only security group ------------------------
    subnets = aws["ec2"].describe_subnets(SubnetIds=outputs["subnet_ids"])["Subnets"]
    assert {next(t["Value"] for t in s["Tags"] if t["Key"] == "Tier") for s in subnets} == {"private"}
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)
    group = aws["ec2"].describe_security_groups(GroupIds=[outputs["security_group_id"]])["SecurityGroups"][0]
    assert group["IpPermissions"] == []
    # HTTPS only: AWS APIs and the server's ALB; no database port with the server in between.
    assert sorted(p["FromPort"] for p in group["IpPermissionsEgress"]) == [443]

    # -- code bucket ---------------------------------------------------------------------
    bucket = outputs["bucket_name"]
    assert aws["s3"].get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    sse = aws["s3"].get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = aws["s3"].get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    policy = json.loads(aws["s3"].get_bucket_policy(Bucket=bucket)["Policy"])
    deny = policy["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"]["Bool"]["aws:SecureTransport"] in ("false", ["false"])
    rules = aws["s3"].get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert sorted(r["ID"] for r in rules) == ["bundles", "results"]

    # -- IAM -----------------------------------------------------------------------------
    for key in ("execution_role_arn", "task_role_arn", "worker_role_arn"):
        role_name = outputs[key].rsplit("/", 1)[1]
        role = aws["iam"].get_role(RoleName=role_name)["Role"]
        assert role["Arn"] == outputs[key]
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        assert trust["Statement"][0]["Principal"]["Service"] == "ecs-tasks.amazonaws.com"
    worker_policy = aws["iam"].get_role_policy(RoleName=f"{server_example.name}-worker", PolicyName="fleetflow-worker")["PolicyDocument"]
    worker_policy = json.loads(worker_policy) if isinstance(worker_policy, str) else worker_policy
    pass_role = next(s for s in worker_policy["Statement"] if s.get("Sid") == "PassOnlyTheFlowRoles")
    assert sorted(pass_role["Resource"]) == sorted([outputs["execution_role_arn"], outputs["task_role_arn"]])

    # -- worker service: command, secrets by reference --------------------------------------
    service = aws["ecs"].describe_services(cluster=outputs["cluster_arn"], services=[f"{server_example.name}-worker"])["services"][0]
    assert service["status"] == "ACTIVE" and service["desiredCount"] == 1 and service["launchType"] == "FARGATE"
    assert sorted(service["networkConfiguration"]["awsvpcConfiguration"]["subnets"]) == sorted(outputs["subnet_ids"])
    task_def = aws["ecs"].describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    container = task_def["containerDefinitions"][0]
    assert container["image"] == outputs["image"]
    assert container["command"] == ["fleetflow", "worker", "start", "--pool", server_example.pool]
    # The worker key by reference, the server's URL in plain env, and no database URL at all.
    assert container["secrets"] == [{"name": "FLEETFLOW_API_KEY", "valueFrom": outputs["worker_api_key_secret_arn"]}]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["FLEETFLOW_API_URL"] == outputs["api_url"] == f"https://{outputs['alb_dns_name']}"
    assert not {"FLEETFLOW_DATABASE_URL", "FLEETFLOW_API_KEY", "FLEETFLOW_ENCRYPTION_KEY"} & environment.keys()
    assert outputs.get("database_url_secret_arn") is None  # terraform leaves null outputs out
    assert task_def["taskRoleArn"] == outputs["worker_role_arn"]
    assert task_def["executionRoleArn"] == outputs["execution_role_arn"]
    aws["secretsmanager"].describe_secret(SecretId=outputs["worker_api_key_secret_arn"])
    # The execution role the worker and flow runs share may read that one secret, nothing else.
    assert _inject_secrets(aws, outputs["execution_role_arn"], "fleetflow-execution") == [outputs["worker_api_key_secret_arn"]]

    _check_server(aws, outputs)
    _check_database(aws, outputs)


def test_a_second_plan_is_empty(server_example: AppliedExample) -> None:
    """Planned right after the apply: anything but what moto does not store is a perpetual diff."""
    assert server_example.replan_changes <= MOTO_PLAN_NOISE


@pytest.mark.parametrize("client_backend", backend_params(["http"]))
def test_terraform_to_ecs_subflows_and_back_over_http(server_example: AppliedExample, temp_store, temp_store_url: str,
                                                      shell_env) -> None:
    timeline = Timeline()
    run_the_pipeline(server_example, temp_store, timeline, server_store_url=temp_store_url)
    print(f"\nproof timeline ({timeline.total():.1f}s):\n{timeline.render()}")


@pytest.fixture
def tf_env(terraform: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a user's shell would have: terraform on hand, and AWS keys (moto accepts any) for the
    saved blocks' clients, which take them from the default chain."""
    monkeypatch.setenv("TERRAFORM", terraform.binary)
    for name in ("TF_CLI_CONFIG_FILE", "TF_IN_AUTOMATION", "CHECKPOINT_DISABLE", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"):  # fmt: skip
        monkeypatch.setenv(name, terraform.env[name])
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def _check_blocks_point_at_terraform_resources(applied: AppliedExample, prefix: str) -> None:
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
    assert [(c["clusterName"], c["status"]) for c in cluster] == [(applied.name, "ACTIVE")]
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

def test_register_blocks_from_an_applied_example(server_example: AppliedExample, tf_env, api_server, tmp_path: Path) -> None:
    """The Python API, the CLI, then the CLI over HTTP (each on its own empty store)."""
    applied = server_example
    endpoint = {"endpoint_url": applied.endpoint}
    with temporary_store() as store:
        result = register_blocks_from_terraform(applied.directory, prefix="reg", aws_client_parameters=endpoint)
        assert [(i.ref, i.status) for i in result.items] == [
            ("aws-credentials/reg-aws", "created"),
            ("s3/reg-code", "created"),
            ("s3/reg-results", "created"),
            ("ecs-task/reg-ecs", "created"),
            (applied.pool, "created"),
        ]
        pool = store.read_work_pool(applied.pool)
        assert (pool.type, pool.infrastructure_block) == ("ecs", "ecs-task/reg-ecs")
        _check_blocks_point_at_terraform_resources(applied, "reg")

        again = register_blocks_from_terraform(applied.directory, prefix="reg", aws_client_parameters=endpoint)
        assert [i.status for i in again.items] == ["unchanged"] * 5

    with temporary_store():
        _check_cli(applied, tmp_path)

    _check_cli_over_http(applied, api_server, tmp_path)


def _check_cli_over_http(applied: AppliedExample, api_server: Any, tmp_path: Path) -> None:
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
        assert store.read_work_pool(applied.pool).infrastructure_block == "ecs-task/http-ecs"
        assert {entry["actor"] for entry in store.read_audit(limit=1000)} == {"register-admin"}
    finally:
        store.dispose()


def _check_cli(applied: AppliedExample, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["aws", "register-blocks", "--prefix", "cli", "--endpoint-url", applied.endpoint]
    first = runner.invoke(app, [*args, "--from-terraform", str(applied.directory)], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "ecs-task/cli-ecs" in first.stdout and "created" in first.stdout
    assert f"fleetflow work-pool inspect {applied.pool}" in first.stdout
    _check_blocks_point_at_terraform_resources(applied, "cli")

    # The same outputs written to a file (`terraform output -json > outputs.json`) change nothing.
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps({k: {"value": v, "sensitive": False} for k, v in applied.outputs.items()}))
    second = runner.invoke(app, [*args, "--from-terraform", str(outputs_file), "--json"])
    assert second.exit_code == 0, second.output
    assert [item["status"] for item in json.loads(second.stdout)] == ["unchanged"] * 5
