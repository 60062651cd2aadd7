"""Offline checks of terraform/: formatting, conventions, validate, `terraform test`, checkov, and
a real apply/destroy of examples/ecs-subflows against moto's server.

Provider: hashicorp/aws 3.39.0 from the local mirror (see docs/terraform.md for why).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from terraform_helpers import example_vars, server_vars

if TYPE_CHECKING:
    from .conftest import Terraform

pytestmark = pytest.mark.terraform

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
TFTEST_DIR = Path(__file__).resolve().parent / "tftest"
MODULES = sorted(p.name for p in (TERRAFORM_DIR / "modules").iterdir() if p.is_dir())
EXAMPLES = sorted(p.name for p in (TERRAFORM_DIR / "examples").iterdir() if p.is_dir())

MODULE_FILES = {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"}
PROVIDER_CONSTRAINT = '">= 3.39, < 6.0"'

# What `fleetflow aws register-blocks --from-terraform` reads; renaming any of these breaks it.
EXAMPLE_OUTPUTS = {
    "region",
    "cluster_arn",
    "cluster_name",
    "subnet_ids",
    "security_group_id",
    "execution_role_arn",
    "task_role_arn",
    "worker_role_arn",
    "bucket_name",
    "bucket_path",
    "log_group_name",
    "work_pool_name",
    "image",
}


def _blocks(text: str, kind: str) -> dict[str, str]:
    """Top-level `kind "name" { ... }` blocks of an HCL file, by name (brace matching, enough for our files)."""
    blocks = {}
    for match in re.finditer(rf'^{kind} "([^"]+)"(?: "([^"]+)")? {{', text, flags=re.M):
        depth, i = 0, match.end() - 1
        while True:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        name = ".".join(g for g in match.groups() if g)
        blocks[name] = text[match.end() : i]
    return blocks


# --------------------------------------------------------------------------------------------
# Static checks (no provider needed)
# --------------------------------------------------------------------------------------------


def test_fmt(terraform: Terraform) -> None:
    for path in (TERRAFORM_DIR, TFTEST_DIR):
        proc = terraform.run("fmt", "-check", "-recursive", "-diff", "-no-color", str(path), cwd=REPO_ROOT, check=False)
        assert proc.returncode == 0, f"run `terraform fmt -recursive {path}`:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("module", MODULES)
def test_module_follows_conventions(module: str) -> None:
    path = TERRAFORM_DIR / "modules" / module
    files = {p.name for p in path.iterdir() if not p.name.startswith(".")}
    assert files == MODULE_FILES, f"modules/{module} must hold exactly {sorted(MODULE_FILES)}"

    variables = _blocks((path / "variables.tf").read_text(), "variable")
    for name, body in variables.items():
        assert re.search(r"^\s*description\s*=", body, re.M), f"{module}: variable {name} has no description"
        assert re.search(r"^\s*type\s*=", body, re.M), f"{module}: variable {name} has no type"
    assert "tags" in variables and "map(string)" in variables["tags"], f"{module}: needs the shared `tags` map"

    for name, body in _blocks((path / "outputs.tf").read_text(), "output").items():
        assert re.search(r"^\s*description\s*=", body, re.M), f"{module}: output {name} has no description"

    resources = list(_blocks((path / "main.tf").read_text(), "resource"))
    by_type: dict[str, list[str]] = {}
    for address in resources:
        rtype, _, rname = address.partition(".")
        by_type.setdefault(rtype, []).append(rname)
    singles = {t: names[0] for t, names in by_type.items() if len(names) == 1}
    assert all(n == "this" for n in singles.values()), f"{module}: single resources must be named `this`: {singles}"

    assert PROVIDER_CONSTRAINT in (path / "versions.tf").read_text()
    assert (TFTEST_DIR / module).is_dir(), f"modules/{module} has no terraform test in {TFTEST_DIR}/{module}"


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_outputs_are_documented(example: str) -> None:
    path = TERRAFORM_DIR / "examples" / example
    outputs = _blocks((path / "outputs.tf").read_text(), "output")
    readme = (path / "README.md").read_text()
    if example == "ecs-subflows":
        assert EXAMPLE_OUTPUTS <= outputs.keys(), f"missing outputs: {EXAMPLE_OUTPUTS - outputs.keys()}"
    for name in outputs:
        assert f"`{name}`" in readme, f"output {name} is not documented in examples/{example}/README.md"
    for name, body in _blocks((path / "variables.tf").read_text(), "variable").items():
        assert re.search(r"^\s*description\s*=", body, re.M) and re.search(r"^\s*type\s*=", body, re.M), name
    assert PROVIDER_CONSTRAINT in (path / "versions.tf").read_text()


def test_checkov_has_no_failed_checks(terraform: Terraform) -> None:
    proc = subprocess.run(
        # --skip-download + BC_SKIP_MAPPING: never call the Prisma Cloud API (no internet in CI).
        [terraform.checkov, "-d", str(TERRAFORM_DIR), "--framework", "terraform", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        env={**terraform.env, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"},
        timeout=300,
    )
    report = json.loads(proc.stdout)
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]]
    assert failed == [], f"checkov failed checks (fix them, or skip inline with a reason):\n{failed}"
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 50, "checkov scanned suspiciously little"
    for check in report["results"]["skipped_checks"]:
        reason = (check["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) > 20, f"skip of {check['check_id']} on {check['resource']} needs a real reason"


# --------------------------------------------------------------------------------------------
# With the provider: validate and `terraform test`
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [f"modules/{m}" for m in MODULES] + [f"examples/{e}" for e in EXAMPLES])
def test_validate(terraform: Terraform, tf_copy: Path, config: str) -> None:
    cwd = tf_copy / config
    terraform.init(cwd)
    proc = terraform.run("validate", "-json", "-no-color", cwd=cwd)
    result = json.loads(proc.stdout)
    assert result["valid"], result
    assert result["error_count"] == 0


@pytest.mark.parametrize("module", MODULES)
def test_module_terraform_test(terraform: Terraform, tf_copy: Path, module: str) -> None:
    cwd = tf_copy / "modules" / module
    terraform.init(cwd)
    proc = terraform.run("test", "-no-color", cwd=cwd, check=False)
    summary = re.search(r"(Success|Failure)! (\d+) passed, (\d+) failed", proc.stdout)
    assert proc.returncode == 0 and summary and summary.group(1) == "Success", proc.stdout + proc.stderr
    assert int(summary.group(2)) > 0 and "skip" not in proc.stdout.split("Success!")[0], proc.stdout


# --------------------------------------------------------------------------------------------
# examples/ecs-subflows: apply, check with boto3, re-plan, destroy -- all against moto's server
# --------------------------------------------------------------------------------------------

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


def _boto3_clients(endpoint: str, env: dict[str, str]) -> dict:
    import boto3

    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    return {name: session.client(name, endpoint_url=endpoint) for name in ("ecs", "s3", "iam", "ec2", "logs", "secretsmanager", "elbv2", "rds")}


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
    flow-run subnets, reachable on 5432 from the server tasks only, its URL (with the generated
    password, TLS required) in the server's database secret."""
    (db,) = aws["rds"].describe_db_instances(DBInstanceIdentifier="fftest-server")["DBInstances"]
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
    url = aws["secretsmanager"].get_secret_value(SecretId=outputs["server_database_url_secret_arn"])["SecretString"]
    assert url.startswith("postgresql+psycopg://fleetflow:") and url.endswith(f"@{host}/fleetflow?sslmode=require")
    assert len(url.split(":", 2)[2].split("@")[0]) == 32  # the generated password (uuid() without dashes)


def _changed_attributes(plan: dict) -> set[tuple[str, str]]:
    changed = set()
    for rc in plan.get("resource_changes", []):
        if rc["change"]["actions"] in (["no-op"], ["read"]):
            continue
        before, after = rc["change"]["before"] or {}, rc["change"]["after"] or {}
        keys = {k for k in set(before) | set(after) if before.get(k) != after.get(k)} or {"<whole resource>"}
        changed |= {(rc["address"], k) for k in keys}
    return changed


@contextlib.contextmanager
def _aws_managed_policies(endpoint: str) -> Iterator[None]:
    """moto with AWS's managed policies (the RDS monitoring role attaches
    AmazonRDSEnhancedMonitoringRole). moto 5 loads them only with MOTO_IAM_LOAD_MANAGED_POLICIES
    (its server runs in this process and reads the variable when it builds a backend; its
    ``/moto-api/config`` has no IAM setting), and keeps its state per process: so the variable
    is set and moto reset before the apply, and the variable removed again after."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        with urllib.request.urlopen(request, timeout=120) as response:  # IAM backends rebuilt lazily, with them
            response.read()
        yield


def test_example_apply_and_destroy_against_moto(terraform: Terraform, tf_copy: Path, moto_server: str, tmp_path: Path) -> None:
    with _aws_managed_policies(moto_server):
        _apply_check_and_destroy(terraform, tf_copy, moto_server, tmp_path)


def _apply_check_and_destroy(terraform: Terraform, tf_copy: Path, moto_server: str, tmp_path: Path) -> None:
    work = tmp_path / "terraform"
    shutil.copytree(tf_copy, work, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "tests"))
    example = work / "examples" / "ecs-subflows"
    # Path-style S3 addressing (no bucket.127.0.0.1 hostnames). Provider 3.x spells it
    # s3_force_path_style, 5.x s3_use_path_style, so it lives in a test-only override file
    # rather than in the example (see the example README).
    (example / "moto_override.tf").write_text('provider "aws" {\n  s3_force_path_style = true\n}\n')
    aws = _boto3_clients(moto_server, terraform.env)
    # The default path: the fleetflow server (modules/server) behind an HTTPS ALB, with its own
    # RDS PostgreSQL (create_database = true; the proof test runs the server on an existing one).
    server = {**server_vars(moto_server, terraform.env), "create_database": "true"}
    tf_vars = example_vars(moto_server, name="fftest", work_pool_name="ecs-test", **server)

    terraform.run("init", "-input=false", "-no-color", cwd=example)
    terraform.run("apply", "-auto-approve", "-input=false", "-no-color", *tf_vars, cwd=example)
    outputs = {k: v["value"] for k, v in json.loads(terraform.run("output", "-json", cwd=example).stdout).items()}

    # -- outputs map onto block fields -------------------------------------------------------
    assert EXAMPLE_OUTPUTS <= outputs.keys()
    assert outputs["region"] == "us-east-1"
    assert outputs["work_pool_name"] == "ecs-test"
    assert outputs["cluster_name"] == "fftest"
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
    worker_policy = aws["iam"].get_role_policy(RoleName="fftest-worker", PolicyName="fleetflow-worker")["PolicyDocument"]
    worker_policy = json.loads(worker_policy) if isinstance(worker_policy, str) else worker_policy
    pass_role = next(s for s in worker_policy["Statement"] if s.get("Sid") == "PassOnlyTheFlowRoles")
    assert sorted(pass_role["Resource"]) == sorted([outputs["execution_role_arn"], outputs["task_role_arn"]])

    # -- worker service: command, secrets by reference --------------------------------------
    service = aws["ecs"].describe_services(cluster=outputs["cluster_arn"], services=["fftest-worker"])["services"][0]
    assert service["status"] == "ACTIVE" and service["desiredCount"] == 1 and service["launchType"] == "FARGATE"
    assert sorted(service["networkConfiguration"]["awsvpcConfiguration"]["subnets"]) == sorted(outputs["subnet_ids"])
    task_def = aws["ecs"].describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    container = task_def["containerDefinitions"][0]
    assert container["image"] == outputs["image"]
    assert container["command"] == ["fleetflow", "worker", "start", "--pool", "ecs-test"]
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

    # -- a second plan is empty (apart from what moto does not store) ------------------------
    terraform.run("plan", "-input=false", "-no-color", "-out=replan.tfplan", *tf_vars, cwd=example)
    replan = json.loads(terraform.run("show", "-json", "replan.tfplan", cwd=example).stdout)
    assert _changed_attributes(replan) <= MOTO_PLAN_NOISE

    # -- destroy -------------------------------------------------------------------------
    terraform.run("destroy", "-auto-approve", "-input=false", "-no-color", *tf_vars, cwd=example)
    cluster = aws["ecs"].describe_clusters(clusters=[outputs["cluster_arn"]])["clusters"]
    assert [c["status"] for c in cluster] in ([], ["INACTIVE"])
    assert not any(r["RoleName"].startswith("fftest-") for r in aws["iam"].list_roles()["Roles"])
    assert bucket not in {b["Name"] for b in aws["s3"].list_buckets()["Buckets"]}
    assert aws["rds"].describe_db_instances()["DBInstances"] == []
    assert json.loads((example / "terraform.tfstate").read_text())["resources"] == []
