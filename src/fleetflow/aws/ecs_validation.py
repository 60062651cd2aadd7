"""The ``ECSTask`` block's validation rules: everything AWS would reject later, checked early.

Runs at block creation (the model validator) and again in the launcher after a deployment's
``infra_overrides`` are merged (``model_copy`` skips validators), before any AWS call. Each
message names the field and the fix. Kept apart from :mod:`.ecs` so the launcher can validate
without importing the block (that import made ``ecs <-> ecs_launcher`` a cycle).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from ..exceptions import ECSConfigError
from ..infrastructure.base import RUNTIME_MIN_MEMORY_MIB
from . import ecs_requests as rq
from .fargate import check_fargate_size

_ROLE_ARN = re.compile(r"^arn:aws[-a-z]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_SSM_ARN = re.compile(r"^arn:aws[-a-z]*:ssm:[a-z0-9-]+:\d{12}:parameter/.+$")
_SECRETS_MANAGER_ARN = re.compile(r"^arn:aws[-a-z]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
_SSM_NAME = re.compile(r"^(/[A-Za-z0-9_.-]+)+$|^[A-Za-z0-9_.-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RuntimePlatform.html
CPU_ARCHITECTURES = ("X86_64", "ARM64")
OS_FAMILIES = (
    "LINUX",
    "WINDOWS_SERVER_2019_FULL",
    "WINDOWS_SERVER_2019_CORE",
    "WINDOWS_SERVER_2016_FULL",
    "WINDOWS_SERVER_2004_CORE",
    "WINDOWS_SERVER_2022_CORE",
    "WINDOWS_SERVER_2022_FULL",
    "WINDOWS_SERVER_2025_CORE",
    "WINDOWS_SERVER_2025_FULL",
    "WINDOWS_SERVER_20H2_CORE",
)
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-storage.html
EPHEMERAL_STORAGE_GIB = (21, 200)


def check_env(env: Mapping[str, Any]) -> None:
    """ECS environment values are strings; None (unset) is allowed."""
    for key, value in env.items():
        if not isinstance(key, str) or not key:
            raise ECSConfigError(f"env has a non-string or empty name {key!r}; names are strings", field="env")
        if value is not None and not isinstance(value, str):
            raise ECSConfigError(
                f"env[{key!r}] must be a string (or None to unset it), got {type(value).__name__}; "
                f"quote it, e.g. env={{{key!r}: {str(value)!r}}}",
                field=f"env.{key}",
            )


def _check_placement(block: Any) -> None:
    if block.capacity_provider_strategy and block.launch_type:
        raise ECSConfigError(
            f"capacity_provider_strategy and launch_type={block.launch_type!r} cannot both be set (AWS rejects "
            "RunTask with both); drop launch_type to use the strategy, or drop capacity_provider_strategy",
            field="capacity_provider_strategy",
        )
    for index, item in enumerate(block.capacity_provider_strategy):
        _check_strategy_item(index, item)
    bases = [s for s in block.capacity_provider_strategy if s.get("base")]
    if len(bases) > 1:
        raise ECSConfigError(
            "only one capacity provider in capacity_provider_strategy may have a non-zero `base`",
            field="capacity_provider_strategy",
        )
    _check_provider_mix(block.capacity_provider_strategy)


def _check_strategy_item(index: int, item: Any) -> None:
    where = f"capacity_provider_strategy[{index}]"
    allowed = {"capacityProvider", "weight", "base"}
    if not isinstance(item, Mapping) or not isinstance(item.get("capacityProvider"), str) or set(item) - allowed:
        raise ECSConfigError(
            f"{where} must be {{'capacityProvider': str, 'weight': 0-1000, 'base': 0-100000}}, got {item!r}",
            field="capacity_provider_strategy",
        )
    limits = {"weight": 1000, "base": 100000}
    for key, top in limits.items():
        value = item.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
            raise ECSConfigError(f"{where}.{key} must be an integer 0-{top}, got {value!r}", field="capacity_provider_strategy")


def _check_provider_mix(strategy: list[dict[str, Any]]) -> None:
    kinds = {s.get("capacityProvider") in rq.FARGATE_PROVIDERS for s in strategy}
    if len(kinds) > 1:
        raise ECSConfigError(
            "capacity_provider_strategy mixes Fargate (FARGATE/FARGATE_SPOT) and EC2 Auto Scaling providers; "
            "AWS allows one kind per strategy",
            field="capacity_provider_strategy",
        )


def _check_role_arns(block: Any) -> None:
    for field in ("execution_role_arn", "task_role_arn"):
        value = getattr(block, field)
        if value is not None and not _ROLE_ARN.match(value):
            raise ECSConfigError(
                f"{field}={value!r} is not an IAM role ARN; expected arn:aws:iam::<12-digit account>:role/<name>, "
                "e.g. arn:aws:iam::123456789012:role/fleetflow-task",
                field=field,
            )


def _check_task_definition_source(block: Any) -> None:
    if block.task_definition_arn and block.task_definition:
        raise ECSConfigError(
            "task_definition_arn and task_definition cannot both be set; use the ARN of a registered definition, "
            "or a definition for fleetflow to register",
            field="task_definition",
        )
    if block.task_definition_arn:
        _check_arn_only_fields(block)
    if block.task_definition is not None:
        _check_user_task_definition(block)


# Fields that live only in a task definition: with a registered ``task_definition_arn`` they
# could only take effect by registering a changed copy, which we promise never to do.
# (``tags`` are sent on RunTask instead.)
_DEFINITION_ONLY = ("image", "secrets", "runtime_platform", "gpu", "ephemeral_storage_gib", "configure_cloudwatch_logs")


def _check_arn_only_fields(block: Any) -> None:
    for field in _DEFINITION_ONLY:
        if getattr(block, field):
            raise ECSConfigError(
                f"{field} cannot be applied to the registered task_definition_arn (it lives in the task "
                f"definition, which fleetflow never modifies); drop {field}, or replace task_definition_arn "
                "by task_definition={...} so fleetflow registers a definition including it",
                field=field,
            )


def _check_user_task_definition(block: Any) -> None:
    td = block.task_definition
    mode = td.get("networkMode")
    if mode not in (None, "awsvpc") and rq.uses_fargate(block):
        raise ECSConfigError(
            f"task_definition.networkMode={mode!r} is not supported on Fargate; remove it (Fargate uses awsvpc)",
            field="task_definition.networkMode",
        )
    if not isinstance(td.get("containerDefinitions", []), list):
        raise ECSConfigError("task_definition.containerDefinitions must be a list", field="task_definition")


def _check_sizes(block: Any) -> None:
    for field in ("cpu", "memory", "gpu"):
        value = getattr(block, field)
        if value is not None and value <= 0:
            raise ECSConfigError(f"{field} must be a positive integer, got {value}", field=field)
    if block.memory is not None and 0 < block.memory < RUNTIME_MIN_MEMORY_MIB:
        raise ECSConfigError(
            f"memory={block.memory} MiB is too small to import the fleetflow runtime in the container; use at "
            f"least {RUNTIME_MIN_MEMORY_MIB} MiB", field="memory")
    if block.task_definition_arn and (block.cpu is None or block.memory is None):
        return  # the other half comes from the registered definition; checked after DescribeTaskDefinition
    if rq.uses_fargate(block):
        cpu, memory = rq.resolve_cpu_memory(block)
        check_fargate_size(cpu, memory)


def _check_gpu_and_storage(block: Any) -> None:
    if block.gpu and rq.uses_fargate(block):
        raise ECSConfigError(
            "gpu needs EC2 capacity (Fargate has no GPUs); set launch_type='EC2' or an EC2 capacity provider "
            "strategy, or drop gpu",
            field="gpu",
        )
    if block.ephemeral_storage_gib is not None:
        low, high = EPHEMERAL_STORAGE_GIB
        if not low <= block.ephemeral_storage_gib <= high:
            raise ECSConfigError(
                f"ephemeral_storage_gib={block.ephemeral_storage_gib} is outside {low}-{high} GiB; "
                f"use {low}-{high}, or drop it for AWS's default 20 GiB",
                field="ephemeral_storage_gib",
            )
        if not rq.uses_fargate(block):
            raise ECSConfigError(
                "ephemeral_storage_gib is a Fargate setting; on EC2 size the instance's volume instead, or drop it",
                field="ephemeral_storage_gib",
            )


def _check_logs(block: Any) -> None:
    if block.cloudwatch_logs_options and not block.configure_cloudwatch_logs:
        raise ECSConfigError(
            "cloudwatch_logs_options needs configure_cloudwatch_logs=True (or stream_output=True)",
            field="cloudwatch_logs_options",
        )
    has_role = block.execution_role_arn or (block.task_definition or {}).get("executionRoleArn")
    if block.configure_cloudwatch_logs and not has_role:
        raise ECSConfigError(
            "configure_cloudwatch_logs (and stream_output) need execution_role_arn: ECS writes the awslogs "
            "stream with the execution role; set execution_role_arn to a role with logs:CreateLogGroup, "
            "logs:CreateLogStream and logs:PutLogEvents",
            field="execution_role_arn",
        )


def _check_secrets(block: Any) -> None:
    for name, ref in block.secrets.items():
        if not _ENV_NAME.match(name):
            raise ECSConfigError(
                f"secrets key {name!r} is not an environment variable name (letters, digits, '_')",
                field=f"secrets.{name}",
            )
        if not (_SSM_ARN.match(ref) or _SECRETS_MANAGER_ARN.match(ref) or _SSM_NAME.match(ref)):
            # Never echo the value: a user may have pasted the secret itself here.
            raise ECSConfigError(
                f"secrets[{name!r}] must reference a secret, not contain it: an SSM parameter name "
                "(/prod/db/password), an SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/...) "
                "or a Secrets Manager ARN (arn:aws:secretsmanager:<region>:<account>:secret:...)",
                field=f"secrets.{name}",
            )
    rq.check_no_secret_in_environment(block, [{"name": k} for k, v in block.env.items() if v is not None])


# What must never be a plain environment variable of a task (anyone allowed to DescribeTasks
# reads overrides): AWS keys, passwords, tokens, fleetflow's key, and URLs with a password.
_URL_WITH_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:[^/?#@]+@")
ALWAYS_SECRET = frozenset({"FLEETFLOW_API_KEY", "FLEETFLOW_ENCRYPTION_KEY", "AWS_ACCESS_KEY_ID",
                           "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})
_SECRET_SUFFIXES = ("_PASSWORD", "_PASSWD", "_TOKEN", "_SECRET", "_SECRET_KEY", "_PRIVATE_KEY", "_API_KEY")
# The launch attempt token identifies an attempt (the runner claims with it); it grants nothing.
NOT_SECRET = frozenset({"FLEETFLOW_LAUNCH_TOKEN"})
RUN_TOKEN_PREFIX = "ffr_"  # fleetflow.orchestrator.keys.TOKEN_PREFIX (tokens go by Secrets Manager: run_token_secrets)


def is_secret_env(name: str, value: str | None, *, by_suffix: bool = True) -> bool:
    """True for a value that must go in ``secrets`` (an ARN), never in plain ``env``."""
    if not value or name in NOT_SECRET:
        return False
    upper = name.upper()
    if upper in ALWAYS_SECRET or _URL_WITH_PASSWORD.match(value):
        return True
    return by_suffix and upper.endswith(_SECRET_SUFFIXES)


def secret_env_error(name: str, where: str) -> ECSConfigError:
    ref = f"arn:aws:ssm:<region>:<account>:parameter/fleetflow/{name.lower()}"
    return ECSConfigError(
        f"{name} ({where}) carries a secret (an AWS key, a password or token, or a password in a URL) and would "
        "be sent as a plain RunTask environment override, readable by anyone who can describe the task. Store it "
        f"in SSM Parameter Store or Secrets Manager and map it in the block: ECSTask(secrets={{{name!r}: {ref!r}}}) "
        "(the execution role needs ssm:GetParameters or secretsmanager:GetSecretValue), or use a URL without a "
        "password (e.g. IAM database authentication)",
        field="secrets",
    )


def _check_env_secrets(block: Any) -> None:
    for name, value in (block.env or {}).items():
        if is_secret_env(name, value):
            raise secret_env_error(name, "the block's env")


def _check_runtime_platform(block: Any) -> None:
    platform = block.runtime_platform
    if not platform:
        return
    allowed = {"cpuArchitecture": CPU_ARCHITECTURES, "operatingSystemFamily": OS_FAMILIES}
    for key, value in platform.items():
        if key not in allowed:
            raise ECSConfigError(
                f"runtime_platform has unknown key {key!r}; use cpuArchitecture and/or operatingSystemFamily",
                field="runtime_platform",
            )
        if value not in allowed[key]:
            raise ECSConfigError(
                f"runtime_platform.{key}={value!r} is not valid; use one of {', '.join(allowed[key])}",
                field=f"runtime_platform.{key}",
            )


def _check_network(block: Any) -> None:
    prefixes = {"subnets": "subnet-", "security_groups": "sg-"}
    for field, prefix in prefixes.items():
        bad = [v for v in getattr(block, field) if not str(v).startswith(prefix)]
        if bad:
            raise ECSConfigError(f"{field} must be IDs starting with {prefix!r}, got {bad}", field=field)
    if block.vpc_id is not None and not block.vpc_id.startswith("vpc-"):
        raise ECSConfigError(f"vpc_id must start with 'vpc-', got {block.vpc_id!r}", field="vpc_id")


def _check_timing(block: Any) -> None:
    if block.task_start_timeout_seconds <= 0:
        raise ECSConfigError("task_start_timeout_seconds must be positive", field="task_start_timeout_seconds")
    if block.task_watch_poll_interval <= 0:
        raise ECSConfigError("task_watch_poll_interval must be positive", field="task_watch_poll_interval")
    if not rq.slugify_family(block.container_name) == block.container_name:
        raise ECSConfigError(
            f"container_name={block.container_name!r} may only contain letters, digits, '-' and '_'",
            field="container_name",
        )


def worker_env_placeholder(block: Any, run_id: str) -> dict[str, str]:
    """The environment a worker adds at launch, as this process's settings would build it
    (store URL, run id, attempt token), minus what the launcher never sends (a path on the
    worker's machine; variables the block maps in ``secrets``). The overrides limit counts it."""
    from ..infrastructure.base import LAUNCH_TOKEN_CHARS, attempt_environment, runner_environment
    from ..settings import get_settings

    s = get_settings()
    env = {**runner_environment(run_id, home=str(s.home), api_url=s.api_url, database_url=s.resolved_database_url()),
           **attempt_environment("0" * LAUNCH_TOKEN_CHARS, 1, "ecs")}
    skip = {"FLEETFLOW_HOME", *(block.secrets or {}), *(block.env or {})}
    # A secret-looking value is refused at launch with its own message; here it only must not count.
    return {k: v for k, v in env.items() if k not in skip and not is_secret_env(k, v, by_suffix=False)}


def _check_requests(block: Any) -> None:
    """Build both requests as the worker will (its environment, the attempt token, the command):
    customizations must apply and overrides must fit in 8192 characters, before any run exists."""
    region = rq.block_region(block, None) or "us-east-1"
    plan = rq.plan_task_definition(block, region=region)
    run_id = str(rq.PLACEHOLDER_FLOW_RUN_ID)
    placeholder_run_task_request(block, plan, region, run_id, env=worker_env_placeholder(block, run_id))


_CHECKS = (
    _check_placement,
    _check_role_arns,
    _check_task_definition_source,
    _check_sizes,
    _check_gpu_and_storage,
    _check_logs,
    _check_secrets,
    _check_env_secrets,
    _check_runtime_platform,
    _check_network,
    _check_timing,
    _check_requests,
)


def validate_ecs_task(block: Any) -> None:
    """Every check, in order; raises the first :class:`ECSConfigError` (a ``ConfigurationError``).

    Runs at creation (model validator) and again in the launcher after ``infra_overrides`` are
    merged and before any AWS call, since ``model_copy(update=...)`` skips validators.
    """
    check_env(block.env)
    rq.parse_task_customizations(block.task_customizations)
    for check in _CHECKS:
        check(block)


def placeholder_run_task_request(block: Any, plan: rq.TaskDefinitionPlan, region: str, run_id: Any,
                                 env: Mapping[str, str] | None = None) -> dict:
    """The RunTask request a launch would send, with placeholders for what only a launch knows."""
    arn = plan.arn or rq.placeholder_task_definition_arn(region, plan.family)
    network = None
    if rq.needs_network_configuration(block, plan.request):
        network = rq.build_network_configuration(block, ["<discovered at launch>"])
    return rq.build_run_task_request(
        block,
        task_definition_arn=arn,
        flow_run_id=run_id,
        env=dict(env or {}),
        command=block.command or rq.default_command(run_id),
        network_configuration=network,
        client_token=rq.make_client_token(run_id, 1),
        started_by="fleetflow",
        tags={},
    )
