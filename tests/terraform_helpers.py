"""Helpers for tests that apply ``terraform/examples/ecs-subflows`` against moto's server.

A plain module (not a conftest) so any test directory can import it: ``tests/`` is on
``sys.path`` because ``tests/conftest.py`` lives there. The Terraform runner itself (the
``terraform`` fixture: mirror-only CLI config, timings) stays in ``tests/terraform/conftest.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXAMPLE = "ecs-subflows"

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

# Path-style S3 addressing (no bucket.127.0.0.1 hostnames). Provider 3.x spells it
# s3_force_path_style, 5.x s3_use_path_style, so it goes in a test-only override file rather
# than in the example (see the example README).
MOTO_OVERRIDE = 'provider "aws" {\n  s3_force_path_style = true\n}\n'


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1 on a free port, for any fixture scope; yields its URL.

    moto keeps its state per process, not per server, so it is reset first: what an earlier test
    in the same (xdist) process left on another moto server, e.g. the ``bucket`` fixture's bucket
    of ``tests/integration/aws``, must not show up in this one."""
    from aws_server import MotoServer

    with MotoServer() as server:
        server.reset()
        yield server.url


@contextlib.contextmanager
def aws_managed_policies() -> Iterator[None]:
    """moto with AWS's managed policies while the block runs (the server's RDS monitoring role
    attaches AmazonRDSEnhancedMonitoringRole). moto 5 loads them only with
    MOTO_IAM_LOAD_MANAGED_POLICIES, read when it builds a backend (its server runs in this
    process; ``/moto-api/config`` has no IAM setting): set before :func:`moto_server` resets."""
    before = os.environ.get("MOTO_IAM_LOAD_MANAGED_POLICIES")
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)
        else:
            os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = before


def copy_example(tf_copy: Path, dest: Path, example: str = EXAMPLE) -> Path:
    """Copy the terraform tree (modules are referenced relatively) under ``dest`` and return the
    example's directory, with the moto provider override in place."""
    work = dest / "terraform"
    shutil.copytree(tf_copy, work, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "tests"))
    example_dir = work / "examples" / example
    (example_dir / "moto_override.tf").write_text(MOTO_OVERRIDE)
    return example_dir


def example_vars(endpoint: str, *, name: str, work_pool_name: str, **extra: Any) -> list[str]:
    """``-var`` arguments for a throw-away apply against ``endpoint`` (destroyable, no retention)."""
    values = {
        "aws_endpoint_url": endpoint,
        "name": name,
        "bucket_force_destroy": "true",
        "secret_recovery_window_in_days": "0",
        "work_pool_name": work_pool_name,
        **extra,
    }
    return [f"-var={key}={value}" for key, value in values.items()]


def server_vars(endpoint: str, env: dict[str, str], region: str = "us-east-1") -> dict[str, str]:
    """``example_vars`` extras of the example's server path on moto: a certificate moto's ACM
    issued for the HTTPS listener (moto's ALB refuses an unknown one, as AWS does), the server
    with its own RDS PostgreSQL (``create_database``: the module's database path is applied
    too; the proof then points the server's URL secret at the test's store), and nothing
    protected from ``destroy``."""
    acm = boto3_clients(endpoint, env, region, services=("acm",))["acm"]
    certificate = acm.request_certificate(DomainName="fleetflow.test")["CertificateArn"]
    return {"certificate_arn": certificate, "create_database": "true", "deletion_protection": "false"}


def direct_vars() -> dict[str, str]:
    """``example_vars`` extras of the example's direct-PostgreSQL path (no server)."""
    return {"create_server": "false"}


def plain_outputs(terraform: Any, example_dir: Path) -> dict[str, Any]:
    """``{name: value}`` of ``terraform output -json`` in ``example_dir``."""
    proc = terraform.run("output", "-json", cwd=example_dir)
    return {key: item["value"] for key, item in json.loads(proc.stdout).items()}


def boto3_clients(endpoint: str, env: dict[str, str], region: str = "us-east-1", services: tuple[str, ...] = (
    "ecs", "s3", "iam", "ec2", "logs", "secretsmanager",
)) -> dict[str, Any]:  # fmt: skip
    """boto3 clients on moto with the throw-away keys of the ``terraform`` fixture's environment."""
    import boto3

    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=region
    )
    return {name: session.client(name, endpoint_url=endpoint) for name in services}


@contextlib.contextmanager
def bucket_policy_suspended(s3: Any, bucket: str) -> Iterator[dict[str, Any]]:
    """Take the code bucket's policy off for the block, put the very same text back after it.

    Why: the code-bucket module's policy denies ``s3:*`` when ``aws:SecureTransport`` is false.
    moto (5.2) evaluates bucket-policy conditions without any request context, so a condition
    on ``aws:SecureTransport`` counts as met for every request and the Deny applies to every
    object read and write, over HTTPS just as over HTTP (``moto/s3/models.py``
    ``FakeBucket.get_permission`` -> ``IAMPolicyStatement._check_conditions`` with no incoming
    values). Serving moto over TLS therefore does not help; the module stays as it is and the
    test steps around the emulator's limitation for the object traffic only.

    Yields the parsed policy (so the caller can check it is the one Terraform created). The
    policy is restored before Terraform sees the bucket again, so ``terraform destroy`` deletes
    exactly what ``terraform apply`` created.
    """
    text = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    try:
        yield json.loads(text)
    finally:
        s3.put_bucket_policy(Bucket=bucket, Policy=text)


@dataclass
class AppliedExample:
    """``terraform apply`` of examples/ecs-subflows on its own moto server, shared by every test of
    one module (one path: the fleetflow server, or direct PostgreSQL).

    Why shared: an apply and its destroy take 40 s on an idle 2-core machine and 100 s or more at
    load, and five tests used to pay them each. Each module applies once (a module-scoped fixture,
    its tests kept on one xdist worker with ``xdist_group``), checks the second plan right after
    the apply, before any test touches what Terraform made, and checks the destroy on teardown.
    """

    name: str
    pool: str
    directory: Path
    endpoint: str
    tf_vars: list[str]
    outputs: dict[str, Any]
    aws: dict[str, Any]
    replan_changes: set[tuple[str, str]]


def changed_attributes(plan: dict[str, Any]) -> set[tuple[str, str]]:
    """``(address, attribute)`` pairs a plan (``terraform show -json``) would change."""
    changed = set()
    for rc in plan.get("resource_changes", []):
        if rc["change"]["actions"] in (["no-op"], ["read"]):
            continue
        before, after = rc["change"]["before"] or {}, rc["change"]["after"] or {}
        keys = {k for k in set(before) | set(after) if before.get(k) != after.get(k)} or {"<whole resource>"}
        changed |= {(rc["address"], k) for k in keys}
    return changed


@contextlib.contextmanager
def applied_example(terraform: Any, tf_copy: Path, dest: Path, *, name: str, pool: str,
                    over_server: bool) -> Iterator[AppliedExample]:
    """Apply the example (server path or direct path), yield it, destroy it and check the destroy."""
    with aws_managed_policies(), moto_server() as endpoint:
        example = copy_example(tf_copy, dest)
        path_vars = server_vars(endpoint, terraform.env) if over_server else direct_vars()
        tf_vars = example_vars(endpoint, name=name, work_pool_name=pool, **path_vars)
        terraform.run("init", "-input=false", "-no-color", cwd=example)
        terraform.run("apply", "-auto-approve", "-input=false", "-no-color", *tf_vars, cwd=example)
        aws = boto3_clients(endpoint, terraform.env, services=(
            "ecs", "s3", "iam", "ec2", "logs", "secretsmanager", "elbv2", "rds"))  # fmt: skip
        try:
            terraform.run("plan", "-input=false", "-no-color", "-out=replan.tfplan", *tf_vars, cwd=example)
            replan = json.loads(terraform.run("show", "-json", "replan.tfplan", cwd=example).stdout)
            outputs = plain_outputs(terraform, example)
            yield AppliedExample(name, pool, example, endpoint, tf_vars, outputs, aws, changed_attributes(replan))
        finally:
            terraform.run("destroy", "-auto-approve", "-input=false", "-no-color", *tf_vars, cwd=example)
        _check_destroyed(aws, outputs, example, name)


def _check_destroyed(aws: dict[str, Any], outputs: dict[str, Any], example: Path, name: str) -> None:
    """What ``terraform destroy`` must leave: an INACTIVE cluster, no role, no bucket, empty state."""
    clusters = aws["ecs"].describe_clusters(clusters=[outputs["cluster_arn"]])["clusters"]
    assert [c["status"] for c in clusters] in ([], ["INACTIVE"])
    assert not any(r["RoleName"].startswith(f"{name}-") for r in aws["iam"].list_roles()["Roles"])
    assert not aws["s3"].list_buckets()["Buckets"]
    assert aws["rds"].describe_db_instances()["DBInstances"] == []
    assert json.loads((example / "terraform.tfstate").read_text())["resources"] == []

