"""Blocks and the ECS work pool from Terraform outputs (``fleetflow aws register-blocks``).

Dict and file inputs against a real store (``temp_store``: SQLite and PostgreSQL); the
directory input (``terraform output -json``) is covered by tests/terraform/test_example_server_path.py.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetflow.aws import S3, AwsCredentials, ECSTask
from fleetflow.aws.terraform import (
    REQUIRED_OUTPUTS,
    blocks_from_outputs,
    normalize_outputs,
    read_terraform_outputs,
    register_blocks_from_terraform,
)
from fleetflow.blocks import Block
from fleetflow.cli import app
from fleetflow.exceptions import BlockAlreadyExists, ConfigurationError

ACCOUNT = "123456789012"
SECRET_ARN = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:fleetflow/database-url-AbCdEf"

# What `terraform output -json` of terraform/examples/ecs-subflows prints (values trimmed).
PLAIN = {
    "region": "eu-west-1",
    "cluster_arn": f"arn:aws:ecs:eu-west-1:{ACCOUNT}:cluster/fleetflow",
    "cluster_name": "fleetflow",
    "vpc_id": "vpc-0abc",
    "subnet_ids": ["subnet-0aaa", "subnet-0bbb"],
    "security_group_id": "sg-0ccc",
    "assign_public_ip": False,
    "execution_role_arn": f"arn:aws:iam::{ACCOUNT}:role/fleetflow-execution",
    "task_role_arn": f"arn:aws:iam::{ACCOUNT}:role/fleetflow-task",
    "worker_role_arn": f"arn:aws:iam::{ACCOUNT}:role/fleetflow-worker",
    "bucket_name": "fleetflow-code-x1",
    "bucket_path": "fleetflow-code-x1/bundles",
    "results_path": "fleetflow-code-x1/results",
    "log_group_name": "/fleetflow/fleetflow",
    "work_pool_name": "ecs",
    "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetflow:0.1.0",
    "database_url_secret_arn": SECRET_ARN,
    "worker_service_name": "fleetflow-worker",
}


def raw(plain: dict) -> dict:
    """The `terraform output -json` shape of ``plain``."""
    kinds = {bool: "bool", str: "string", list: ["list", "string"]}
    return {k: {"sensitive": False, "type": kinds[type(v)], "value": v} for k, v in plain.items()}


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


# --- parsing (pure) -----------------------------------------------------------------------------
def test_both_output_shapes_normalise_to_the_same_values():
    assert normalize_outputs(raw(PLAIN)) == PLAIN
    assert normalize_outputs(PLAIN) == PLAIN


def test_json_file_and_errors_for_bad_sources(tmp_path: Path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(raw(PLAIN)))
    assert read_terraform_outputs(path) == PLAIN
    assert read_terraform_outputs(str(path)) == PLAIN

    with pytest.raises(ConfigurationError, match="neither a Terraform directory nor an outputs JSON file"):
        read_terraform_outputs(tmp_path / "nope")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match="cannot read Terraform outputs"):
        read_terraform_outputs(tmp_path / "bad.json")
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(ConfigurationError, match="no Terraform outputs: run `terraform apply`"):
        read_terraform_outputs(tmp_path / "empty.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ConfigurationError, match="not a JSON object"):
        read_terraform_outputs(tmp_path / "list.json")


def test_directory_without_terraform_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TERRAFORM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ConfigurationError, match="terraform is not installed") as err:
        read_terraform_outputs(tmp_path)
    assert "terraform output -json > outputs.json" in str(err.value)


def _fake_terraform(tmp_path: Path, script: str) -> str:
    binary = tmp_path / "terraform"
    binary.write_text(f"#!{sys.executable}\n{script}\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return str(binary)


def test_directory_runs_terraform_output_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    record = tmp_path / "argv.json"
    script = (
        "import json, os, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps({{'argv': sys.argv[1:], 'cwd': os.getcwd()}}))\n"
        f"print(json.dumps({raw(PLAIN)!r}))"
    )
    monkeypatch.setenv("TERRAFORM", _fake_terraform(tmp_path, script))
    workdir = tmp_path / "example"
    workdir.mkdir()
    assert read_terraform_outputs(workdir) == PLAIN
    called = json.loads(record.read_text())
    assert called["argv"] == ["output", "-json", "-no-color"]
    assert os.path.samefile(called["cwd"], workdir)


def test_directory_with_no_state_or_a_failing_terraform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Terraform prints `{}` when the directory has no state.
    monkeypatch.setenv("TERRAFORM", _fake_terraform(tmp_path, "print('{}')"))
    with pytest.raises(ConfigurationError, match="holds no Terraform outputs: run `terraform apply`"):
        read_terraform_outputs(tmp_path)
    failing = "import sys\nsys.stderr.write('Error: Backend initialization required\\n')\nsys.exit(1)"
    monkeypatch.setenv("TERRAFORM", _fake_terraform(tmp_path, failing))
    with pytest.raises(ConfigurationError, match="failed in .*Backend initialization required"):
        read_terraform_outputs(tmp_path)


# --- mapping (pure) ----------------------------------------------------------------------------
def test_outputs_map_onto_block_fields():
    built = blocks_from_outputs(PLAIN, prefix="prod")
    assert built.names == {"credentials": "prod-aws", "storage": "prod-code", "infrastructure": "prod-ecs",
                           "results": "prod-results"}
    assert built.work_pool_name == "ecs"

    creds = built.credentials
    assert creds.region_name == "eu-west-1"
    assert creds.aws_access_key_id is None and creds.aws_secret_access_key is None and creds.aws_session_token is None
    assert creds.aws_client_parameters.endpoint_url is None

    assert built.storage.bucket_path == "fleetflow-code-x1/bundles"
    assert built.results.bucket_path == "fleetflow-code-x1/results" and built.results.credentials == creds
    assert built.infrastructure.env == {"FLEETFLOW_RESULT_STORAGE": "s3/prod-results"}
    assert built.storage.credentials == creds
    assert built.storage.aws_access_key_id is None

    ecs = built.infrastructure
    assert ecs.aws_credentials == creds
    assert ecs.cluster == PLAIN["cluster_arn"]
    assert ecs.launch_type == "FARGATE"
    assert ecs.subnets == ["subnet-0aaa", "subnet-0bbb"] and ecs.security_groups == ["sg-0ccc"]
    assert ecs.vpc_id == "vpc-0abc" and ecs.assign_public_ip is False
    assert ecs.execution_role_arn == PLAIN["execution_role_arn"] and ecs.task_role_arn == PLAIN["task_role_arn"]
    assert ecs.image == PLAIN["image"]
    assert ecs.configure_cloudwatch_logs is True
    assert ecs.cloudwatch_logs_options == {"awslogs-group": "/fleetflow/fleetflow", "awslogs-create-group": "false"}
    assert ecs.secrets == {"FLEETFLOW_DATABASE_URL": SECRET_ARN}
    assert ecs.env == {"FLEETFLOW_RESULT_STORAGE": "s3/prod-results"}


def test_the_task_definition_uses_the_terraform_resources():
    """What a launch would send: the example's log group (not created), secret by reference, network."""
    preview = blocks_from_outputs(PLAIN).infrastructure.preview()
    container = preview["task_definition"]["containerDefinitions"][0]
    assert container["image"] == PLAIN["image"]
    assert container["secrets"] == [{"name": "FLEETFLOW_DATABASE_URL", "valueFrom": SECRET_ARN}]
    assert not any(e["name"] == "FLEETFLOW_DATABASE_URL" for e in container.get("environment", []))
    options = container["logConfiguration"]["options"]
    assert options["awslogs-group"] == "/fleetflow/fleetflow" and options["awslogs-create-group"] == "false"
    assert options["awslogs-region"] == "eu-west-1"
    assert preview["task_definition"]["executionRoleArn"] == PLAIN["execution_role_arn"]
    request = preview["run_task_request"]
    assert request["cluster"] == PLAIN["cluster_arn"]
    assert request["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": ["subnet-0aaa", "subnet-0bbb"], "securityGroups": ["sg-0ccc"], "assignPublicIp": "DISABLED",
    }  # fmt: skip


def test_optional_outputs_may_be_absent_or_null():
    trimmed = {k: v for k, v in PLAIN.items() if k not in ("image", "vpc_id", "assign_public_ip")}
    ecs = blocks_from_outputs({**trimmed, "database_url_secret_arn": None}).infrastructure
    assert ecs.secrets == {}
    assert ecs.image is None and ecs.vpc_id is None and ecs.assign_public_ip is None


def test_missing_outputs_are_all_named_with_where_they_come_from():
    partial = {k: v for k, v in PLAIN.items() if k not in ("cluster_arn", "subnet_ids", "bucket_path")}
    with pytest.raises(ConfigurationError) as err:
        blocks_from_outputs({**partial, "log_group_name": None})
    message = str(err.value)
    for name in ("cluster_arn", "subnet_ids", "bucket_path", "log_group_name"):
        assert name in message
    assert "terraform/examples/ecs-subflows" in message
    assert "region" not in message.split(":")[1]  # only the missing ones are listed
    with pytest.raises(ConfigurationError) as err:
        blocks_from_outputs({"cluster_name": "x"})
    assert all(name in str(err.value) for name in REQUIRED_OUTPUTS)


def test_access_keys_in_outputs_are_never_stored():
    leaky = {**PLAIN, "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "s3cr3t"}
    built = blocks_from_outputs(leaky)
    for block in (built.credentials, built.storage, built.infrastructure):
        text = json.dumps(block.model_dump(mode="json"))
        assert "AKIAEXAMPLE" not in text and "s3cr3t" not in text


def test_client_parameters_only_when_given():
    built = blocks_from_outputs(PLAIN, aws_client_parameters={"endpoint_url": "http://127.0.0.1:5000"})
    assert built.credentials.aws_client_parameters.endpoint_url == "http://127.0.0.1:5000"
    assert built.infrastructure.aws_credentials.aws_client_parameters.endpoint_url == "http://127.0.0.1:5000"
    with pytest.raises(ConfigurationError, match="endpoint_url"):
        blocks_from_outputs(PLAIN, aws_client_parameters={"endpoint_url": "localhost:5000"})


def test_invalid_values_name_the_block_and_outputs():
    with pytest.raises(ConfigurationError, match="do not make a valid ECSTask block.*execution_role_arn"):
        blocks_from_outputs({**PLAIN, "execution_role_arn": "not-an-arn"})
    with pytest.raises(ConfigurationError, match="subnet_ids must be a list of strings"):
        blocks_from_outputs({**PLAIN, "subnet_ids": [1, 2]})
    with pytest.raises(ConfigurationError, match="invalid prefix 'Prod Env'"):
        blocks_from_outputs(PLAIN, prefix="Prod Env")


# --- registering against a store -----------------------------------------------------------------
def test_register_saves_blocks_and_pool(temp_store):
    result = register_blocks_from_terraform(raw(PLAIN), prefix="prod")
    assert [(i.kind, i.name, i.status) for i in result.items] == [
        ("aws-credentials", "prod-aws", "created"),
        ("s3", "prod-code", "created"),
        ("s3", "prod-results", "created"),
        ("ecs-task", "prod-ecs", "created"),
        ("work-pool", "ecs", "created"),
    ]
    assert result.infrastructure.ref == "ecs-task/prod-ecs" and result.work_pool.ref == "ecs"

    assert AwsCredentials.load("prod-aws").region_name == "eu-west-1"
    storage = S3.load("prod-code")
    assert storage.bucket_path == "fleetflow-code-x1/bundles" and storage.credentials.region_name == "eu-west-1"
    ecs = Block.load("ecs-task/prod-ecs")
    assert isinstance(ecs, ECSTask) and ecs.cluster == PLAIN["cluster_arn"]
    assert ecs.secrets == {"FLEETFLOW_DATABASE_URL": SECRET_ARN}
    pool = temp_store.read_work_pool("ecs")
    assert pool.type == "ecs" and pool.infrastructure_block == "ecs-task/prod-ecs"


def test_rerunning_is_idempotent(temp_store):
    register_blocks_from_terraform(PLAIN, client=temp_store)
    before = {d.name: (d.id, d.updated) for d in temp_store.read_block_documents()}
    again = register_blocks_from_terraform(raw(PLAIN), client=temp_store)  # the other shape, same content
    assert [i.status for i in again.items] == ["unchanged"] * 5 and not again.changed
    assert {d.name: (d.id, d.updated) for d in temp_store.read_block_documents()} == before


def test_changed_outputs_need_overwrite_and_nothing_is_half_written(temp_store):
    register_blocks_from_terraform(PLAIN, client=temp_store)
    changed = {**PLAIN, "image": "example.com/fleetflow:0.2.0", "bucket_path": "other-bucket/bundles"}
    with pytest.raises(BlockAlreadyExists) as err:
        register_blocks_from_terraform(changed, client=temp_store)
    message = str(err.value)
    assert "'fleetflow-code'" in message and "'fleetflow-ecs'" in message and "--overwrite" in message
    assert '"fleetflow-code-x1/bundles" -> "other-bucket/bundles"' in message
    assert "'fleetflow-aws'" not in message  # the credentials did not change
    assert S3.load("fleetflow-code", client=temp_store).bucket_path == "fleetflow-code-x1/bundles"
    assert ECSTask.load("fleetflow-ecs", client=temp_store).image == PLAIN["image"]

    updated = register_blocks_from_terraform(changed, client=temp_store, overwrite=True)
    assert [i.status for i in updated.items] == ["unchanged", "updated", "unchanged", "updated", "unchanged"]
    assert S3.load("fleetflow-code", client=temp_store).bucket_path == "other-bucket/bundles"
    assert ECSTask.load("fleetflow-ecs", client=temp_store).image == "example.com/fleetflow:0.2.0"


def test_a_pool_using_another_block_is_a_conflict(temp_store):
    from fleetflow.orchestrator.schemas import WorkPool

    temp_store.create_work_pool(WorkPool(id="", name="ecs", type="process", concurrency_limit=3, description="mine"))
    with pytest.raises(BlockAlreadyExists, match="work pool 'ecs' already exists as a process pool"):
        register_blocks_from_terraform(PLAIN, client=temp_store)
    assert temp_store.read_block_documents() == []  # checked before anything was saved
    result = register_blocks_from_terraform(PLAIN, client=temp_store, overwrite=True)
    assert result.work_pool.status == "updated"
    pool = temp_store.read_work_pool("ecs")
    assert (pool.type, pool.infrastructure_block) == ("ecs", "ecs-task/fleetflow-ecs")
    assert (pool.concurrency_limit, pool.description) == (3, "mine")  # what the user set is kept


def test_a_bare_pool_a_worker_created_first_is_taken_over(temp_store):
    """The Terraform worker service may start (creating its pool as a plain process pool) before
    register-blocks runs; that pool has nothing to lose, so no --overwrite is needed."""
    from fleetflow.deployments import ensure_work_pool

    ensure_work_pool(temp_store, "ecs")
    result = register_blocks_from_terraform(PLAIN, client=temp_store)
    assert result.work_pool.status == "updated"
    pool = temp_store.read_work_pool("ecs")
    assert (pool.type, pool.infrastructure_block) == ("ecs", "ecs-task/fleetflow-ecs")


# --- the CLI ------------------------------------------------------------------------------------
def test_cli_registers_then_reports_unchanged(temp_store, tmp_path: Path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(raw(PLAIN)))
    first = invoke("aws", "register-blocks", "--from-terraform", str(outputs), "--prefix", "prod")
    assert first.exit_code == 0, first.output
    for text in ("AwsCredentials", "aws-credentials/prod-aws", "s3/prod-code", "ecs-task/prod-ecs", "created"):
        assert text in first.stdout
    assert "fleetflow work-pool inspect ecs" in first.stdout
    assert "-sb s3/prod-code" in first.stdout

    second = invoke("aws", "register-blocks", "--from-terraform", str(outputs), "--prefix", "prod", "--json")
    assert second.exit_code == 0, second.output
    assert [(i["ref"], i["status"]) for i in json.loads(second.stdout)] == [
        ("aws-credentials/prod-aws", "unchanged"),
        ("s3/prod-code", "unchanged"),
        ("s3/prod-results", "unchanged"),
        ("ecs-task/prod-ecs", "unchanged"),
        ("ecs", "unchanged"),
    ]


def test_cli_errors_are_one_line(temp_store, tmp_path: Path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"region": {"value": "us-east-1", "type": "string"}}))
    result = invoke("aws", "register-blocks", "--from-terraform", str(outputs))
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "cluster_arn" in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_cli_overwrite_and_endpoint(temp_store, tmp_path: Path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(PLAIN))
    assert invoke("aws", "register-blocks", "--from-terraform", str(outputs)).exit_code == 0
    args = ["aws", "register-blocks", "--from-terraform", str(outputs), "--endpoint-url", "http://127.0.0.1:5000"]
    refused = invoke(*args)
    assert refused.exit_code == 1 and "--overwrite" in refused.stderr
    replaced = invoke(*args, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert "updated" in replaced.stdout
    creds = AwsCredentials.load("fleetflow-aws")
    assert creds.aws_client_parameters.endpoint_url == "http://127.0.0.1:5000"
    assert ECSTask.load("fleetflow-ecs").aws_credentials.aws_client_parameters.endpoint_url == "http://127.0.0.1:5000"
