"""Pure mapping of ECS responses to what the worker understands (no I/O, no boto3 import).

* DescribeTasks ``tasks[]`` / ``failures[]`` -> :class:`~fleetflow.infrastructure.base.LaunchStatus`
  with a reason a person can act on (out of memory with the size, image pull, Spot interruption...);
* RunTask ``failures[]`` -> :class:`~fleetflow.exceptions.RunTaskFailure` naming the fix;
* which errors are worth retrying (throttling, 5xx, dropped connections).

Kept apart from the launcher so every branch is unit-tested with botocore-validated response
dicts, the way Dagster tests ``dagster_aws/ecs/tasks.py`` without AWS.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from ..exceptions import RunTaskFailure
from ..infrastructure.base import LaunchStatus

# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html
NOT_STARTED = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})
STOPPED = "STOPPED"
DESCRIBE_BATCH = 100  # DescribeTasks takes "up to 100 tasks" per call
FLOW_RUN_TAG = "fleetflow:flow-run-id"


# --- task ARNs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskArn:
    """The parts of a task ARN. New-format ARNs carry the cluster name
    (``arn:aws:ecs:<region>:<account>:task/<cluster>/<id>``); old-format ones do not
    (``.../task/<id>``), then the block's cluster is used.
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-account-settings.html#ecs-resource-ids"""

    arn: str
    region: str | None
    cluster: str | None
    task_id: str


def parse_task_arn(arn: str) -> TaskArn:
    """Split a task ARN; a bare task id is accepted too (region and cluster unknown)."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or not parts[5].startswith("task/"):
        return TaskArn(arn, None, None, arn.rsplit("/", 1)[-1])
    path = parts[5].split("/")
    cluster = path[1] if len(path) == 3 else None
    return TaskArn(arn, parts[3] or None, cluster, path[-1])


def cluster_of(arn: str, block_cluster: str | None) -> str:
    """The cluster to ask about ``arn``: the ARN's, else the block's, else ECS's ``default``."""
    return parse_task_arn(arn).cluster or block_cluster or "default"


# --- DescribeTasks -> LaunchStatus ---------------------------------------------------------------
def statuses_from_describe(
    response: Mapping[str, Any], arns: Sequence[str], container_names: Mapping[str, str], memory: Mapping[str, Any] | None = None
) -> dict[str, LaunchStatus]:
    """Statuses for every ARN asked about: described, reported MISSING, or absent (missing too).

    ``container_names`` maps each ARN to the flow container's name; ``memory`` optionally to the
    task's memory (MiB) as the launcher knew it, used when ECS does not report one.
    """
    out: dict[str, LaunchStatus] = {}
    for failure in response.get("failures") or []:
        if failure.get("arn") in arns:
            out[failure["arn"]] = status_from_failure(failure)
    for task in response.get("tasks") or []:
        arn = task.get("taskArn")
        if arn in arns:
            out[arn] = status_from_task(task, container_names.get(arn, "flow"), (memory or {}).get(arn))
    for arn in arns:
        out.setdefault(arn, missing_status(arn, "DescribeTasks did not return it"))
    return out


def missing_status(arn: str, why: str) -> LaunchStatus:
    """ECS forgets stopped tasks about an hour after they stop, so after a long worker outage a
    task can be gone; the run's own final state (if it reported one) still stands."""
    reason = (
        f"ECS no longer knows task {arn} ({why}); ECS keeps stopped tasks for about an hour, so the "
        "task probably stopped while no worker was watching"
    )
    return LaunchStatus(arn, finished=True, missing=True, reason=reason)


def status_from_failure(failure: Mapping[str, Any]) -> LaunchStatus:
    """A DescribeTasks ``failures[]`` entry (reason ``MISSING`` for unknown tasks)."""
    detail = failure.get("reason") or "unknown"
    if failure.get("detail"):
        detail = f"{detail}: {failure['detail']}"
    return missing_status(failure.get("arn") or "?", f"DescribeTasks failure {detail}")


def status_from_task(task: Mapping[str, Any], container_name: str = "flow", memory: Any = None) -> LaunchStatus:
    """One described task: not started, running, or stopped with an exit code and a reason."""
    arn = task.get("taskArn", "")
    last = task.get("lastStatus") or "PROVISIONING"
    if last != STOPPED:
        return LaunchStatus(arn, finished=False, started=last not in NOT_STARTED)
    container = flow_container(task, container_name)
    exit_code = container_exit_code(container)
    size = _memory_mib(task.get("memory")) or _memory_mib(memory)
    oom = is_out_of_memory(task, container)
    reason = stop_reason(task, container, exit_code, size, oom)
    return LaunchStatus(arn, finished=True, started=True, exit_code=exit_code, reason=reason, out_of_memory=oom)


def flow_container(task: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The flow container of a described task ({} when ECS reports none, e.g. before pulling)."""
    containers = task.get("containers") or []
    return next((c for c in containers if c.get("name") == name), {})


def container_exit_code(container: Mapping[str, Any]) -> int | None:
    """The exit code, trusted only once the container itself is STOPPED (a container that never
    started has no exit code; some emulators report 0 for it)."""
    if container.get("lastStatus") != STOPPED:
        return None
    code = container.get("exitCode")
    return int(code) if code is not None else None


def _memory_mib(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def is_out_of_memory(task: Mapping[str, Any], container: Mapping[str, Any]) -> bool:
    """ECS puts "OutOfMemoryError: Container killed due to memory usage" in the container reason."""
    texts = (container.get("reason") or "", task.get("stoppedReason") or "")
    return any("OutOfMemory" in text for text in texts)


# The human part of each stop reason, by the signal it is recognised from.
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html
_PULL_HINT = (
    "could not pull the image {image}: check the image name and tag, and that the execution role can "
    "pull it (ECR: ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer) and the "
    "subnets reach the registry (public IP, NAT gateway or VPC endpoints)"
)
_INIT_HINT = (
    "ECS could not prepare the task (ResourceInitializationError): check that the execution role can read "
    "the `secrets` (ssm:GetParameters / secretsmanager:GetSecretValue) and write CloudWatch logs, and that "
    "the subnets reach those AWS APIs (public IP, NAT gateway or VPC endpoints)"
)
_STOP_CODE_TEXT = {
    "SpotInterruption": "it was a Fargate Spot interruption (AWS reclaimed the capacity); retry the run, or use "
    "launch_type='FARGATE' for runs that must not be interrupted",
    "TerminationNotice": "the task's host was retired by AWS (TerminationNotice); retry the run",
    "InfrastructureHealth": "the task's host failed a health check (InfrastructureHealth); retry the run",
    "ServiceSchedulerInitiated": "the ECS service scheduler stopped the task",
    "UserInitiated": "the task was stopped by a StopTask call (by fleetflow on cancel/timeout, or by a person)",
    "TaskFailedToStart": "the task failed to start",
    "EssentialContainerExited": "the flow container exited",
}


def stop_reason(
    task: Mapping[str, Any], container: Mapping[str, Any], exit_code: int | None, memory: int | None, oom: bool
) -> str:
    """What a person needs: the cause in plain words, the fix, then ECS's own words."""
    return f"{_headline(task, container, exit_code, memory, oom)} ({_ecs_words(task, container)})"


def _headline(task: Mapping[str, Any], container: Mapping[str, Any], exit_code: int | None, memory: int | None, oom: bool) -> str:
    texts = " ".join(filter(None, (task.get("stoppedReason"), container.get("reason"))))
    size = f"{memory} MiB" if memory else "its memory limit"
    if oom:
        return f"out of memory: the flow container was killed for using more than {size}; raise `memory`"
    if "CannotPullContainer" in texts:
        return _PULL_HINT.format(image=container.get("image") or "of the flow container")
    if "ResourceInitializationError" in texts:
        return _INIT_HINT
    code = task.get("stopCode")
    if code == "EssentialContainerExited" and exit_code == 137:
        return f"the flow container was killed by SIGKILL (exit 137), often a sign of running out of memory ({size})"
    return _STOP_CODE_TEXT.get(code or "", "the ECS task stopped")


def _ecs_words(task: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    words = [f"stopCode={task.get('stopCode') or 'none'}"]
    if task.get("stoppedReason"):
        words.append(f"stoppedReason={task['stoppedReason']!r}")
    if container.get("reason"):
        words.append(f"container {container.get('name')!r} reason={container['reason']!r}")
    return "ECS: " + ", ".join(words)


# --- RunTask failures[] ------------------------------------------------------------------------
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html
def _failure_text(reason: str, cluster: str, cpu: Any, memory: Any) -> str:
    texts = {
        "RESOURCE:MEMORY": f"cluster {cluster!r} has no container instance with {memory} MiB free; use FARGATE "
        "or add capacity (scale the cluster's Auto Scaling group or add a capacity provider)",
        "RESOURCE:CPU": f"cluster {cluster!r} has no container instance with {cpu} CPU units free; use FARGATE "
        "or add capacity (scale the cluster's Auto Scaling group or add a capacity provider)",
        "RESOURCE:GPU": f"cluster {cluster!r} has no container instance with the requested GPUs free; add GPU "
        "instances (e.g. g5/p4 in the capacity provider) or lower `gpu`",
        "RESOURCE:ENI": f"cluster {cluster!r} has no container instance with a free network interface for an "
        "awsvpc task; enable ENI trunking, use larger instances, or use FARGATE",
        "RESOURCE:PORTS_TCP": "the host ports the task definition maps are taken on every instance; drop "
        "hostPort mappings or add instances",
        "RESOURCE:PORTS_UDP": "the UDP host ports the task definition maps are taken on every instance; drop "
        "hostPort mappings or add instances",
        "AGENT": "the ECS agent of the chosen container instance is disconnected; restart the agent or replace "
        "the instance (or use FARGATE)",
        "ATTRIBUTE": "no container instance has the attributes the task definition requires (platform, "
        "GPU, CPU architecture...); check placement constraints and the instances' attributes",
        "MISSING": "the container instance for the task was not found; check the cluster's instances",
        "INACTIVE": "the container instance is draining or inactive; add capacity",
    }
    if reason in texts:
        return texts[reason]
    if "capacity is unavailable" in reason.lower():
        return "Fargate has no spare capacity in these subnets' availability zones right now; retry later, " \
            "or add subnets in other availability zones"
    return reason or "unknown reason"


def run_task_failure(failures: Sequence[Mapping[str, Any]], *, cluster: str, cpu: Any, memory: Any) -> RunTaskFailure:
    """One :class:`RunTaskFailure` for RunTask's ``failures[]``; ``.failures`` keeps the raw list."""
    parts = []
    for failure in failures:
        text = _failure_text(failure.get("reason") or "", cluster, cpu, memory)
        detail = f" [{failure['detail']}]" if failure.get("detail") else ""
        parts.append(f"{text} (ECS failure reason {failure.get('reason')!r}{detail})")
    error = RunTaskFailure("RunTask started no task: " + "; ".join(parts))
    error.failures = [dict(f) for f in failures]  # type: ignore[attr-defined]
    return error


# --- retries ---------------------------------------------------------------------------------------
# Error codes that mean "slow down / try again", across ECS, EC2 and CloudWatch Logs.
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "ServerException",  # ECS's 5xx error code
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ('' for anything else)."""
    response = getattr(exc, "response", None)
    return str(((response or {}).get("Error") or {}).get("Code") or "") if isinstance(response, Mapping) else ""


def _http_status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    meta = (response or {}).get("ResponseMetadata") or {} if isinstance(response, Mapping) else {}
    return int(meta.get("HTTPStatusCode") or 0)


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 429/5xx answers and dropped/refused/timed-out connections are transient;
    everything else (validation, access denied, not found) fails at once."""
    if error_code(exc) in THROTTLING_CODES:
        return True
    status = _http_status(exc)
    if status == 429 or status >= 500:
        return True
    return _is_connection_error(exc)


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, (asyncio.TimeoutError, ConnectionError)):
        return True
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError
    except ImportError:  # pragma: no cover - botocore is present wherever this is called
        return False
    return isinstance(exc, (BotoConnectionError, HTTPClientError))


# --- ListTasks / re-attach -----------------------------------------------------------------------
@dataclass(frozen=True)
class FoundTask:
    """A task found by ``startedBy``: enough to match it to a flow run and watch it."""

    arn: str
    flow_run_id: str | None
    last_status: str | None
    desired_status: str | None
    started_by: str | None


def found_task(task: Mapping[str, Any]) -> FoundTask:
    """A described task (``include=["TAGS"]``) as a :class:`FoundTask`; the flow run id comes from
    the task's tag, else from the FLEETFLOW_FLOW_RUN_ID environment override."""
    return FoundTask(
        arn=task.get("taskArn", ""),
        flow_run_id=task_flow_run_id(task),
        last_status=task.get("lastStatus"),
        desired_status=task.get("desiredStatus"),
        started_by=task.get("startedBy"),
    )


def task_flow_run_id(task: Mapping[str, Any]) -> str | None:
    """The flow run a task was launched for (tag, else environment override)."""
    for tag in task.get("tags") or []:
        if tag.get("key") == FLOW_RUN_TAG:
            return tag.get("value")
    for override in (task.get("overrides") or {}).get("containerOverrides") or []:
        for env in override.get("environment") or []:
            if env.get("name") == "FLEETFLOW_FLOW_RUN_ID":
                return env.get("value")
    return None


def chunks(items: Sequence[str], size: int = DESCRIBE_BATCH) -> Iterable[list[str]]:
    """``items`` in lists of at most ``size`` (DescribeTasks' 100-task limit)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
