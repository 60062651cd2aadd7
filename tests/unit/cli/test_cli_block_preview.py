"""`fleetflow block preview ecs-task/NAME [--override ...]`."""

import json

from typer.testing import CliRunner

from fleetflow.aws import ECSTask
from fleetflow.cli import app


def test_preview_prints_requests_with_overrides_and_masked_secrets(temp_store):
    # A token in plain env is refused at creation now; a secret-looking name still is masked.
    ECSTask(image="img:1", cluster="c", env={"CREDENTIAL_NOTE": "tok-plain"}).save("prod")
    out = CliRunner().invoke(app, ["block", "preview", "ecs-task/prod", "--override", "cpu=512",
                                   "--override", "memory=2048", "--flow-run-id", "run-9"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    req = data["run_task_request"]
    assert req["overrides"]["cpu"] == "512" and req["overrides"]["memory"] == "2048"
    assert req["overrides"]["containerOverrides"][0]["command"][-1] == "run-9"
    assert "tok-plain" not in out.output and data["task_definition"]["family"].startswith("fleetflow-")


def test_preview_bad_override_is_one_line(temp_store):
    ECSTask(image="img:1").save("p2")
    out = CliRunner().invoke(app, ["block", "preview", "ecs-task/p2", "--override", "memroy=1"])
    assert out.exit_code == 1 and "memroy" in out.output and "Traceback" not in out.output
