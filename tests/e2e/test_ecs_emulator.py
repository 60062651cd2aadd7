"""The test-side ECS emulator on its own, driven by plain boto3 calls against moto's server."""

from __future__ import annotations

import json
import os
import sys

import pytest

from aws_server import boto3_client
from ecs_emulator import ESSENTIAL_EXITED, ECSEmulator
from waiting import wait_until

pytestmark = pytest.mark.aws

SCRIPT = (
    "import json, os, sys; "
    "names = ['FOO', 'FROM_TD', 'OVERRIDDEN', 'DB_PASSWORD', 'API_TOKEN', 'JSON_USER', 'AWS_ENDPOINT_URL', "
    "'FLEETFLOW_DATABASE_URL']; "
    "print(json.dumps({n: os.environ.get(n) for n in names})); "
    "print(os.environ['FOO']); sys.exit(3)"
)


def _cluster_and_definition(url: str, command: list[str], **container: object) -> str:
    ecs = boto3_client(url, "ecs")
    ecs.create_cluster(clusterName="emu")
    definition = {"name": "flow", "image": "fleetflow-test", "essential": True, "memory": 512,
                  "command": command, **container}
    return ecs.register_task_definition(family="emu", containerDefinitions=[definition])["taskDefinition"][
        "taskDefinitionArn"
    ]


def _run_task(url: str, td_arn: str, **overrides: object) -> str:
    response = boto3_client(url, "ecs").run_task(
        cluster="emu", taskDefinition=td_arn, launchType="FARGATE", overrides=overrides
    )
    assert not response["failures"]
    return response["tasks"][0]["taskArn"]


def _describe(url: str, task_arn: str) -> dict:
    return boto3_client(url, "ecs").describe_tasks(cluster="emu", tasks=[task_arn])["tasks"][0]


def test_runs_the_container_with_the_effective_environment_and_records_the_exit(aws_env, ecs_emulator, monkeypatch):
    url = aws_env.url
    monkeypatch.setenv("FLEETFLOW_DATABASE_URL", "sqlite:////host/only.db")  # must not leak into the container
    ssm = boto3_client(url, "ssm")
    ssm.put_parameter(Name="/fleetflow/db-password", Value="s3cr3t", Type="SecureString")
    secrets = boto3_client(url, "secretsmanager")
    token_arn = secrets.create_secret(Name="api-token", SecretString="tok-123")["ARN"]
    json_arn = secrets.create_secret(Name="creds", SecretString=json.dumps({"user": "ada"}))["ARN"]
    td_arn = _cluster_and_definition(
        url, ["false"],
        environment=[{"name": "FROM_TD", "value": "td"}, {"name": "OVERRIDDEN", "value": "td"}],
        secrets=[
            {"name": "DB_PASSWORD", "valueFrom": "/fleetflow/db-password"},
            {"name": "API_TOKEN", "valueFrom": token_arn},
            {"name": "JSON_USER", "valueFrom": f"{json_arn}:user::"},
        ],
    )
    command = [sys.executable, "-c", SCRIPT]
    task_arn = _run_task(
        url, td_arn, cpu="512", memory="1024",
        containerOverrides=[{"name": "flow", "command": command, "environment": [
            {"name": "FOO", "value": "bar"}, {"name": "OVERRIDDEN", "value": "override"}]}],
    )

    assert ecs_emulator.wait_for_exit(task_arn) == 3
    ecs_emulator.raise_errors()
    seen = json.loads(ecs_emulator.output(task_arn).splitlines()[0])
    assert seen == {
        "FOO": "bar", "FROM_TD": "td", "OVERRIDDEN": "override", "DB_PASSWORD": "s3cr3t", "API_TOKEN": "tok-123",
        "JSON_USER": "ada", "AWS_ENDPOINT_URL": url, "FLEETFLOW_DATABASE_URL": None,
    }
    assert ecs_emulator.output(task_arn).splitlines()[1] == "bar"
    (launch,) = ecs_emulator.launched
    assert launch["task_arn"] == task_arn and launch["command"] == command
    assert (launch["cpu"], launch["memory"]) == ("512", "1024")
    assert launch["env"]["DB_PASSWORD"] == "s3cr3t" and launch["env"]["FOO"] == "bar"
    task = _describe(url, task_arn)
    assert task["lastStatus"] == "STOPPED" and task["desiredStatus"] == "STOPPED"
    assert task["stoppedReason"] == ESSENTIAL_EXITED


def test_task_stays_running_while_its_process_runs(aws_env, ecs_emulator, tmp_path):
    marker = tmp_path / "started"
    script = f"import pathlib, time; pathlib.Path({str(marker)!r}).write_text('x'); time.sleep(60)"
    td_arn = _cluster_and_definition(aws_env.url, [sys.executable, "-c", script])
    task_arn = _run_task(aws_env.url, td_arn)
    wait_until(lambda: marker.exists(), "the container to start")
    for _ in range(6):  # moto's default transition would reach STOPPED within four describes
        assert _describe(aws_env.url, task_arn)["lastStatus"] == "RUNNING"
    assert task_arn not in ecs_emulator.exit_codes


def test_stop_task_terminates_the_process(aws_env, ecs_emulator, tmp_path):
    marker = tmp_path / "pid"
    script = f"import os, pathlib, time; pathlib.Path({str(marker)!r}).write_text(str(os.getpid())); time.sleep(60)"
    td_arn = _cluster_and_definition(aws_env.url, [sys.executable, "-c", script])
    task_arn = _run_task(aws_env.url, td_arn)
    wait_until(lambda: marker.exists() and marker.read_text(), "the container to start")
    boto3_client(aws_env.url, "ecs").stop_task(cluster="emu", task=task_arn, reason="cancelled by the test")

    assert ecs_emulator.wait_for_exit(task_arn) == -15  # SIGTERM, like ECS's first signal
    assert _describe(aws_env.url, task_arn)["stoppedReason"] == "cancelled by the test"
    with pytest.raises(ProcessLookupError):
        os.kill(int(marker.read_text()), 0)


def test_stop_ends_every_process_it_started(aws_env, tmp_path):
    marker = tmp_path / "pid"
    script = f"import os, pathlib, time; pathlib.Path({str(marker)!r}).write_text(str(os.getpid())); time.sleep(60)"
    td_arn = _cluster_and_definition(aws_env.url, [sys.executable, "-c", script])
    with ECSEmulator(aws_env.url, poll_interval=0.05) as emulator:
        task_arn = _run_task(aws_env.url, td_arn)
        emulator.wait_for_launches(1)
        wait_until(lambda: marker.exists() and marker.read_text(), "the container to start")
    with pytest.raises(ProcessLookupError):
        os.kill(int(marker.read_text()), 0)
    assert emulator.exit_codes[task_arn] == -15
    assert _describe(aws_env.url, task_arn)["lastStatus"] == "STOPPED"


def test_a_container_without_a_command_stops_the_task_with_the_reason(aws_env, ecs_emulator):
    ecs = boto3_client(aws_env.url, "ecs")
    ecs.create_cluster(clusterName="emu")
    td_arn = ecs.register_task_definition(
        family="nocmd", containerDefinitions=[{"name": "flow", "image": "x", "memory": 512}]
    )["taskDefinition"]["taskDefinitionArn"]
    task_arn = _run_task(aws_env.url, td_arn)
    assert ecs_emulator.wait_for_exit(task_arn) == -1
    assert "no entryPoint/command" in _describe(aws_env.url, task_arn)["stoppedReason"]
    assert ecs_emulator.errors  # recorded for the test to see, never swallowed
