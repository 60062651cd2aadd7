"""Pure ECS response mapping: DescribeTasks -> LaunchStatus, RunTask failures[], retries, env rules.

Every response dict is first checked against botocore's ECS service model through a
``Stubber`` (``add_response`` validates the response against the operation's OUTPUT shape),
so a fixture cannot drift from what AWS actually returns.
Stop codes and reasons: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

botocore_session = pytest.importorskip("botocore.session")
from botocore.exceptions import (  # noqa: E402
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.stub import Stubber  # noqa: E402

from fleetflow import states as st  # noqa: E402
from fleetflow.aws import ECSTask  # noqa: E402
from fleetflow.aws import ecs_launcher as el  # noqa: E402
from fleetflow.aws import ecs_requests as rq  # noqa: E402
from fleetflow.aws import ecs_watch as watch  # noqa: E402
from fleetflow.aws.ecs_logs import log_records, log_stream_for  # noqa: E402
from fleetflow.exceptions import ECSConfigError, RunTaskFailure  # noqa: E402
from fleetflow.orchestrator.schemas import FlowRun  # noqa: E402

ARN = "arn:aws:ecs:us-east-1:123456789012:task/ml/0123456789abcdef0123456789abcdef"
TD_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/fleetflow-flow-abc:1"
EXEC_ROLE = "arn:aws:iam::123456789012:role/fleetflow-exec"


@pytest.fixture(scope="module")
def ecs_client() -> Any:
    session = botocore_session.get_session()
    return session.create_client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")


def validated(client: Any, operation: str, response: dict[str, Any]) -> dict[str, Any]:
    """``response`` after botocore validated it against ``operation``'s output shape."""
    stubber = Stubber(client)
    stubber.add_response(operation, response)  # raises ParamValidationError on a malformed fixture
    return response


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "flow", "image": "img:1", "lastStatus": "RUNNING", **fields}


def task(last: str = "RUNNING", containers: list | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "taskArn": ARN,
        "taskDefinitionArn": TD_ARN,
        "lastStatus": last,
        "desiredStatus": "STOPPED" if last == "STOPPED" else "RUNNING",
        "cpu": "1024",
        "memory": "4096",
        "containers": containers if containers is not None else [container(lastStatus=last)],
        **fields,
    }


def describe(ecs_client: Any, *tasks: dict, failures: list | None = None) -> dict[str, Any]:
    response = validated(ecs_client, "describe_tasks", {"tasks": list(tasks), "failures": failures or []})
    return watch.statuses_from_describe(response, [ARN], {ARN: "flow"})




def stopped(ecs_client: Any, *, stop_code: str, reason: str, exit_code: int | None = None, container_reason: str | None = None,
            container_status: str = "STOPPED"):
    c = container(lastStatus=container_status)
    if exit_code is not None:
        c["exitCode"] = exit_code
    if container_reason:
        c["reason"] = container_reason
    t = task("STOPPED", [c], stopCode=stop_code, stoppedReason=reason, stoppedAt=dt.datetime(2024, 1, 1))
    return describe(ecs_client, t)[ARN]


# --- lifecycle ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("last", ["PROVISIONING", "PENDING", "ACTIVATING"])
def test_not_yet_running_is_not_started(ecs_client, last):
    status = describe(ecs_client, task(last))[ARN]
    assert not status.started and not status.finished


@pytest.mark.parametrize("last", ["RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING"])
def test_running_and_stopping_are_started_not_finished(ecs_client, last):
    status = describe(ecs_client, task(last))[ARN]
    assert status.started and not status.finished


def test_clean_exit(ecs_client):
    status = stopped(ecs_client, stop_code="EssentialContainerExited", reason="Essential container in task exited", exit_code=0)
    assert status.finished and status.exit_code == 0 and not status.out_of_memory
    assert "flow container exited" in status.reason and "stopCode=EssentialContainerExited" in status.reason


def test_nonzero_exit_names_the_code(ecs_client):
    status = stopped(ecs_client, stop_code="EssentialContainerExited", reason="Essential container in task exited", exit_code=3)
    assert status.exit_code == 3
    assert status.crash_message().endswith("exit code 3")


# --- out of memory -------------------------------------------------------------------------------------
def test_out_of_memory_is_named_with_the_size(ecs_client):
    status = stopped(
        ecs_client,
        stop_code="EssentialContainerExited",
        reason="Essential container in task exited",
        exit_code=137,
        container_reason="OutOfMemoryError: Container killed due to memory usage",
    )
    assert status.out_of_memory and status.exit_code == 137
    assert "out of memory" in status.reason and "4096 MiB" in status.reason and "raise `memory`" in status.reason
    assert "OutOfMemoryError: Container killed due to memory usage" in status.reason


def test_out_of_memory_uses_the_launch_memory_when_ecs_reports_none(ecs_client):
    c = container(lastStatus="STOPPED", exitCode=137, reason="OutOfMemoryError: Container killed due to memory usage")
    t = task("STOPPED", [c], stopCode="EssentialContainerExited", stoppedReason="Essential container in task exited")
    del t["memory"]
    response = validated(ecs_client, "describe_tasks", {"tasks": [t], "failures": []})
    status = watch.statuses_from_describe(response, [ARN], {ARN: "flow"}, {ARN: 8192})[ARN]
    assert status.out_of_memory and "8192 MiB" in status.reason


def test_exit_137_without_oom_reason_hints_at_memory_but_is_not_oom(ecs_client):
    status = stopped(ecs_client, stop_code="EssentialContainerExited", reason="Essential container in task exited", exit_code=137)
    assert not status.out_of_memory and "SIGKILL" in status.reason and "4096 MiB" in status.reason


# --- start failures --------------------------------------------------------------------------------------
def test_cannot_pull_image_says_check_the_image_and_execution_role(ecs_client):
    status = stopped(
        ecs_client,
        stop_code="TaskFailedToStart",
        reason="CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/library/img:1: not found",
        container_status="STOPPED",
    )
    assert status.finished and status.exit_code is None
    assert "could not pull the image img:1" in status.reason
    assert "check the image name" in status.reason and "execution role can pull it" in status.reason
    assert "stopCode=TaskFailedToStart" in status.reason and "CannotPullContainerError" in status.reason


def test_cannot_pull_in_container_reason_only(ecs_client):
    status = stopped(
        ecs_client, stop_code="TaskFailedToStart", reason="Task failed to start",
        container_reason="CannotPullContainerError: access denied", container_status="STOPPED",
    )
    assert "could not pull the image" in status.reason and "access denied" in status.reason


def test_resource_initialization_error_points_at_execution_role(ecs_client):
    status = stopped(
        ecs_client, stop_code="TaskFailedToStart",
        reason="ResourceInitializationError: unable to pull secrets or registry auth: AccessDeniedException",
    )
    assert "execution role" in status.reason and "secrets" in status.reason


def test_task_failed_to_start_generic(ecs_client):
    status = stopped(ecs_client, stop_code="TaskFailedToStart", reason="Timeout waiting for network interface provisioning")
    assert status.reason.startswith("the task failed to start") and "network interface" in status.reason


# --- stopped by someone else -------------------------------------------------------------------------------
def test_spot_interruption_says_retry_or_use_fargate(ecs_client):
    status = stopped(ecs_client, stop_code="SpotInterruption", reason="Your Spot Task was interrupted.", exit_code=143)
    assert "Fargate Spot interruption" in status.reason and "retry" in status.reason and "FARGATE" in status.reason
    assert status.exit_code == 143


def test_user_initiated_stop(ecs_client):
    status = stopped(ecs_client, stop_code="UserInitiated", reason="Stopped by fleetflow: cancelled", exit_code=143)
    assert "StopTask" in status.reason and "Stopped by fleetflow: cancelled" in status.reason


def test_exit_code_is_ignored_until_the_container_stopped(ecs_client):
    status = stopped(ecs_client, stop_code="TaskFailedToStart", reason="x", exit_code=0, container_status="PENDING")
    assert status.exit_code is None


def test_stopped_without_containers(ecs_client):
    t = task("STOPPED", [], stopCode="TaskFailedToStart", stoppedReason="Task failed to start")
    status = describe(ecs_client, t)[ARN]
    assert status.finished and status.exit_code is None and "failed to start" in status.reason


# --- missing -------------------------------------------------------------------------------------------
def test_missing_failure_is_finished_and_missing(ecs_client):
    status = describe(ecs_client, failures=[{"arn": ARN, "reason": "MISSING"}])[ARN]
    assert status.finished and status.missing and "MISSING" in status.reason and "about an hour" in status.reason


def test_absent_from_the_response_is_missing(ecs_client):
    status = describe(ecs_client)[ARN]
    assert status.finished and status.missing


def test_only_asked_arns_are_returned(ecs_client):
    other = {**task(), "taskArn": ARN.replace("0123", "9999")}
    statuses = describe(ecs_client, task(), other)
    assert list(statuses) == [ARN]


# --- ARNs ------------------------------------------------------------------------------------------------
def test_parse_new_and_old_task_arns():
    new = watch.parse_task_arn(ARN)
    assert (new.region, new.cluster, new.task_id) == ("us-east-1", "ml", "0123456789abcdef0123456789abcdef")
    old = watch.parse_task_arn("arn:aws:ecs:eu-west-1:123456789012:task/abc-123")
    assert (old.region, old.cluster, old.task_id) == ("eu-west-1", None, "abc-123")
    assert watch.cluster_of(old.arn, "blocks-cluster") == "blocks-cluster"
    assert watch.cluster_of(old.arn, None) == "default"
    assert watch.cluster_of(ARN, "ignored") == "ml"


def test_chunks_of_100():
    assert [len(c) for c in watch.chunks([str(i) for i in range(250)])] == [100, 100, 50]


# --- RunTask failures[] ------------------------------------------------------------------------------------
def run_task_failures(ecs_client, *failures: dict) -> list[dict]:
    return validated(ecs_client, "run_task", {"tasks": [], "failures": list(failures)})["failures"]


@pytest.mark.parametrize(
    "reason,expected",
    [
        ("RESOURCE:MEMORY", "cluster 'ml' has no container instance with 4096 MiB free; use FARGATE or add capacity"),
        ("RESOURCE:CPU", "cluster 'ml' has no container instance with 2048 CPU units free; use FARGATE or add capacity"),
        ("RESOURCE:GPU", "requested GPUs"),
        ("RESOURCE:ENI", "ENI trunking"),
        ("AGENT", "ECS agent"),
        ("ATTRIBUTE", "attributes the task definition requires"),
        ("Capacity is unavailable at this time. Please try again later or in a different availability zone", "retry later"),
        ("SOMETHING:NEW", "SOMETHING:NEW"),
    ],
)
def test_run_task_failures_name_reason_and_fix(ecs_client, reason, expected):
    failures = run_task_failures(ecs_client, {"arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/ml/1", "reason": reason})
    error = watch.run_task_failure(failures, cluster="ml", cpu=2048, memory=4096)
    assert isinstance(error, RunTaskFailure)
    assert expected in str(error) and repr(reason) in str(error)
    assert error.failures == failures


def test_run_task_failure_lists_every_failure_with_detail(ecs_client):
    failures = run_task_failures(
        ecs_client, {"reason": "RESOURCE:MEMORY", "detail": "i-1"}, {"reason": "RESOURCE:CPU", "detail": "i-2"}
    )
    text = str(watch.run_task_failure(failures, cluster="c", cpu=1, memory=2))
    assert "[i-1]" in text and "[i-2]" in text and "2 MiB" in text and "1 CPU units" in text


def test_started_task_raises_for_failures_and_for_nothing(ecs_client):
    failures = run_task_failures(ecs_client, {"reason": "RESOURCE:MEMORY"})
    with pytest.raises(RunTaskFailure, match="4096 MiB free"):
        el.started_task({"tasks": [], "failures": failures}, cluster="c", cpu=1024, memory=4096)
    with pytest.raises(el.LaunchError, match="neither a task nor a failure"):
        el.started_task({"tasks": [], "failures": []}, cluster="c", cpu=1, memory=2)


# --- retry classification ------------------------------------------------------------------------------------
def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "RunTask")


@pytest.mark.parametrize(
    "exc",
    [
        client_error("ThrottlingException"),
        client_error("Throttling"),
        client_error("RequestLimitExceeded"),
        client_error("TooManyRequestsException", 429),
        client_error("ServerException", 500),
        client_error("Whatever", 503),
        EndpointConnectionError(endpoint_url="https://ecs.us-east-1.amazonaws.com"),
        ConnectionClosedError(endpoint_url="https://ecs.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://ecs.us-east-1.amazonaws.com"),
        TimeoutError(),
        ConnectionResetError(),
    ],
)
def test_transient_errors_are_retried(exc):
    assert watch.is_retryable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        client_error("AccessDeniedException"),
        client_error("InvalidParameterException"),
        client_error("ClientException"),
        client_error("ClusterNotFoundException"),
        ValueError("bug"),
    ],
)
def test_permanent_errors_are_not_retried(exc):
    assert not watch.is_retryable(exc)


def test_aws_error_keeps_operation_code_and_hint():
    error = el.aws_error("RunTask", client_error("AccessDeniedException"))
    assert (error.operation, error.code) == ("RunTask", "AccessDeniedException")
    assert "permission for RunTask" in str(error)


# --- secrets never in plain environment -------------------------------------------------------------------
SECRET_URL = "postgresql+psycopg://fleetflow:hunter2@db.internal:5432/fleetflow"
SSM = "arn:aws:ssm:us-east-1:123456789012:parameter/fleetflow/db-url"


def test_password_url_without_secret_mapping_is_refused():
    block = ECSTask()
    with pytest.raises(ECSConfigError) as err:
        el.container_environment(block, {"FLEETFLOW_DATABASE_URL": SECRET_URL, "FLEETFLOW_FLOW_RUN_ID": "r"})
    text = str(err.value)
    assert "FLEETFLOW_DATABASE_URL" in text and "secrets=" in text and err.value.field == "secrets"
    assert "hunter2" not in text


def test_password_url_mapped_in_secrets_is_left_to_ecs():
    block = ECSTask(execution_role_arn=EXEC_ROLE, secrets={"FLEETFLOW_DATABASE_URL": SSM})
    env = el.container_environment(block, {"FLEETFLOW_DATABASE_URL": SECRET_URL, "FLEETFLOW_FLOW_RUN_ID": "r"})
    assert env == {"FLEETFLOW_FLOW_RUN_ID": "r"}


@pytest.mark.parametrize(
    "url", ["sqlite:////home/me/.fleetflow/fleetflow.db", "postgresql://fleetflow@db:5432/fleetflow", "https://api.example.com"]
)
def test_password_less_urls_may_be_plain(url):
    assert el.container_environment(ECSTask(), {"FLEETFLOW_DATABASE_URL": url}) == {"FLEETFLOW_DATABASE_URL": url}


def test_api_key_needs_a_secret_mapping():
    with pytest.raises(ECSConfigError, match="FLEETFLOW_API_KEY"):
        el.container_environment(ECSTask(), {"FLEETFLOW_API_URL": "https://x", "FLEETFLOW_API_KEY": "k-123"})


def test_password_url_in_block_env_is_refused():
    with pytest.raises(ECSConfigError, match="the block's env"):
        el.container_environment(ECSTask(env={"WAREHOUSE_URL": "postgresql://u:pw@h/db"}), {})


def test_block_env_replaces_runner_env():
    block = ECSTask(env={"FLEETFLOW_DATABASE_URL": "postgresql://trust@db/x"})
    assert el.container_environment(block, {"FLEETFLOW_DATABASE_URL": SECRET_URL}) == {}


def test_mapped_secret_never_reaches_the_run_task_request():
    block = ECSTask(execution_role_arn=EXEC_ROLE, secrets={"FLEETFLOW_DATABASE_URL": SSM}, subnets=["subnet-1"])
    env = el.container_environment(block, {"FLEETFLOW_DATABASE_URL": SECRET_URL, "FLEETFLOW_FLOW_RUN_ID": "r"})
    request = rq.build_run_task_request(
        block, task_definition_arn=TD_ARN, flow_run_id="r", env=env, command=None, network_configuration=None,
        client_token="t", started_by="fleetflow", tags={},
    )
    assert "hunter2" not in str(request)


# --- launch-side helpers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("pool", ["default", "ml pool/α", "a" * 80, "", None])
def test_started_by_is_stable_short_and_valid(pool):
    value = el.started_by_for(pool)
    assert value == el.started_by_for(pool) and value.startswith("fleetflow")
    assert len(value) <= 36 and all(ch.isascii() and (ch.isalnum() or ch in "-/_") for ch in value)


def test_long_pool_names_stay_distinct():
    assert el.started_by_for("a" * 80 + "x") != el.started_by_for("a" * 80 + "y")


def test_launch_attempt_is_per_claim():
    pending = st.Pending()
    run = FlowRun(id="r", name="n", flow_name="f", state=pending)
    assert el.launch_attempt(run) == el.launch_attempt(run.model_copy())
    later = run.model_copy(update={"state": st.Pending(timestamp=pending.timestamp + dt.timedelta(seconds=5))})
    assert el.launch_attempt(later) != el.launch_attempt(run)
    token = rq.make_client_token("6f1c1e2a-0000-4000-8000-000000000001", el.launch_attempt(run))
    assert len(token) <= 64 and token.startswith("fleetflow-")


def test_run_tags_are_sanitised():
    run = FlowRun(id="r", name="crimson otter", flow_name="train<gpu>", deployment_id="d-1", work_pool_name="ml")
    assert el.run_tags(run) == {
        "fleetflow:flow": "train-gpu-",
        "fleetflow:flow-run-name": "crimson otter",
        "fleetflow:deployment-id": "d-1",
        "fleetflow:work-pool": "ml",
    }


def family(block: ECSTask) -> str:
    return rq.plan_task_definition(block, region="us-east-1").family


def test_sizes_do_not_change_the_registered_definition():
    base = ECSTask(image="img:1")
    assert family(base) == family(ECSTask(image="img:1", cpu=4096, memory=16384)) == family(ECSTask(image="img:1", memory=512))
    assert family(base) != family(ECSTask(image="img:2"))


def test_sizes_still_reach_the_run_task_overrides():
    block = ECSTask(image="img:1", cpu=4096, memory=16384, subnets=["subnet-1"])
    request = rq.build_run_task_request(
        block, task_definition_arn=TD_ARN, flow_run_id="r", env={}, command=None, network_configuration=None,
        client_token="t", started_by="fleetflow", tags={},
    )
    assert (request["overrides"]["cpu"], request["overrides"]["memory"]) == ("4096", "16384")
    assert request["overrides"]["containerOverrides"][0]["memory"] == 16384


def test_launch_sizes_fall_back_to_the_registered_definition():
    block = ECSTask(task_definition_arn=TD_ARN, memory=4096)
    assert el.launch_sizes(block, {"cpu": "2048", "memory": "8192"}) == (2048, 4096)


# --- CloudWatch stream names ---------------------------------------------------------------------------------
def test_log_stream_is_prefix_container_task_id():
    td = rq.build_task_definition(ECSTask(image="i", stream_output=True, execution_role_arn=EXEC_ROLE), region="eu-west-1")
    stream = log_stream_for(td, "flow", ARN)
    assert stream.group == rq.DEFAULT_LOG_GROUP and stream.region == "eu-west-1"
    assert stream.stream == f"{rq.LOG_STREAM_PREFIX}/flow/0123456789abcdef0123456789abcdef"
    assert log_stream_for(rq.build_task_definition(ECSTask(image="i")), "flow", ARN) is None


def test_log_events_become_run_log_records():
    records = log_records([{"timestamp": 1_700_000_000_123, "message": "hello\n"}], "run-1", "flow")
    assert records[0].message == "hello" and records[0].flow_run_id == "run-1" and records[0].name == "ecs.flow"
    assert records[0].timestamp == dt.datetime.fromtimestamp(1_700_000_000.123, tz=dt.timezone.utc)


def test_found_task_reads_the_flow_run_from_tags_or_environment():
    tagged = {"taskArn": ARN, "tags": [{"key": "fleetflow:flow-run-id", "value": "r-1"}]}
    env_only = {"taskArn": ARN, "overrides": {"containerOverrides": [{"name": "flow", "environment": [{"name": "FLEETFLOW_FLOW_RUN_ID", "value": "r-2"}]}]}}
    assert watch.found_task(tagged).flow_run_id == "r-1"
    assert watch.found_task(env_only).flow_run_id == "r-2"
    assert watch.found_task({"taskArn": ARN}).flow_run_id is None
