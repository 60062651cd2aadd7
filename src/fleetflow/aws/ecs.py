"""The ``ECSTask`` block: run a flow as an AWS ECS task (Fargate, Fargate Spot, EC2, external).

Field names and meanings follow prefect-aws 0.3's ``ECSTask`` so a Prefect user migrates by
changing the import; the extra fields (subnets, security groups, capacity providers, secrets,
GPU...) replace the JSON patches Prefect users wrote for them. This module holds only the
configuration and its validation; requests are built by the pure functions in
:mod:`fleetflow.aws.ecs_requests` and sent by :mod:`fleetflow.aws.ecs_launcher`.

Everything AWS would reject later is checked here, at creation and again (``validate_ecs_task``)
after a worker merges a deployment's ``infra_overrides``, with a message naming the field and
the fix.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal, Mapping

import pydantic
from pydantic import Field, field_validator, model_validator

from ..blocks.secrets import MASK
from ..exceptions import ECSConfigError
from ..infrastructure.base import Infrastructure
from . import ecs_requests as rq
from .credentials import AwsCredentials
from .fargate import check_fargate_size

LaunchType = Literal["FARGATE", "FARGATE_SPOT", "EC2", "EXTERNAL"]

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
_SENSITIVE_ENV = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL", re.I)


class ECSTask(Infrastructure):
    """Run a flow as an ECS task; ``preview()`` shows exactly what would be sent to AWS."""

    _block_type_slug: ClassVar[str] = "ecs-task"
    _schema_version: ClassVar[int] = 1
    _description: ClassVar[str] = "Run flows as AWS ECS tasks on Fargate, Fargate Spot, EC2 or external instances."
    kind: ClassVar[str] = "ecs"

    # --- generic infrastructure fields (Prefect's Infrastructure base) -------------------------
    name: str | None = Field(default=None, description="Name for logs and the run record; not part of the task definition.")
    labels: dict[str, str] = Field(default_factory=dict, description="Added to each task's tags (per run; not in the task definition).")
    env: dict[str, str | None] = Field(
        default_factory=dict,
        description="Environment variables for the flow container, sent as RunTask overrides (never in the "
        "task definition). None unsets a variable. Put secret values in `secrets`, not here.",
    )
    command: list[str] | None = Field(
        default=None, description="Container command; default runs `python -m fleetflow.runner <flow-run-id>`."
    )

    # --- AWS access and placement -------------------------------------------------------------
    aws_credentials: AwsCredentials | None = Field(
        default=None, description="Credentials and region for ECS/EC2/Logs calls; None uses the default AWS chain."
    )
    cluster: str | None = Field(default=None, description="Cluster name or ARN; None is the account's `default` cluster.")
    launch_type: LaunchType | None = Field(
        default=None,
        description="FARGATE, FARGATE_SPOT (sent as the FARGATE_SPOT capacity provider), EC2 or EXTERNAL. "
        "None means FARGATE, unless `capacity_provider_strategy` is set.",
    )
    capacity_provider_strategy: list[dict[str, Any]] = Field(
        default_factory=list,
        description="RunTask capacityProviderStrategy: [{capacityProvider, weight, base}]. Excludes `launch_type`.",
    )
    vpc_id: str | None = Field(
        default=None,
        description="VPC whose subnets are used when `subnets` is empty; None is the default VPC (awsvpc mode only).",
    )
    subnets: list[str] = Field(default_factory=list, description="Subnet IDs for awsvpc tasks; empty discovers the VPC's subnets.")
    security_groups: list[str] = Field(default_factory=list, description="Security group IDs; empty uses the VPC default group.")
    assign_public_ip: bool | None = Field(
        default=None,
        description="Give the task a public IP (needed to pull images from public subnets without NAT). None is ENABLED, like prefect-aws.",
    )

    # --- task definition ----------------------------------------------------------------------
    task_definition_arn: str | None = Field(
        default=None,
        description="Use this registered task definition as is (never re-registered). Excludes `task_definition` "
        "and the fields that only a task definition can carry (image, secrets, logs, runtime_platform...).",
    )
    task_definition: dict[str, Any] | None = Field(
        default=None,
        description="A RegisterTaskDefinition request to start from; fleetflow sets its own fields on top.",
    )
    family: str | None = Field(
        default=None,
        description="Readable part of the family name; the registered family is fleetflow-<family>-<content hash>.",
    )
    image: str | None = Field(default=None, description="Image of the flow container; default is the fleetflow runtime image.")
    container_name: str = Field(default="flow", description="Name of the container that runs the flow.")
    auto_deregister_task_definition: bool = Field(
        default=False,
        description="Deregister task definitions this block registered after the run. Off by default: definitions "
        "are content-addressed and shared by every run with the same configuration.",
    )
    cpu: int | None = Field(
        default=None,
        description="Task CPU units (1024 = 1 vCPU). On Fargate a valid pair with memory; default 1024, or the "
        "smallest cpu that accepts `memory`.",
    )
    memory: int | None = Field(
        default=None, description="Task memory in MiB. Default 2048, or the smallest Fargate memory for `cpu`."
    )
    gpu: int | None = Field(default=None, description="GPUs for the flow container (EC2 capacity only).")
    ephemeral_storage_gib: int | None = Field(
        default=None, description="Fargate ephemeral storage in GiB, 21-200 (AWS default 20)."
    )
    runtime_platform: dict[str, str] | None = Field(
        default=None, description='{"cpuArchitecture": "X86_64"|"ARM64", "operatingSystemFamily": "LINUX"|...}.'
    )
    execution_role_arn: str | None = Field(
        default=None,
        description="Role ECS uses to pull the image, read `secrets` and write logs. Required for CloudWatch logs.",
    )
    task_role_arn: str | None = Field(default=None, description="Role the flow code runs as (S3 code bundle, results...).")
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Env var name -> SSM parameter name/ARN or Secrets Manager secret ARN; injected by ECS at start.",
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Tags on the task definition, propagated to every task."
    )

    # --- logs ------------------------------------------------------------------------------------
    configure_cloudwatch_logs: bool | None = Field(
        default=None,
        description="Send the container's output to CloudWatch (awslogs driver). Default: same as `stream_output`.",
    )
    cloudwatch_logs_options: dict[str, str] = Field(
        default_factory=dict,
        description="awslogs options added to / replacing the defaults (group /fleetflow/flows, prefix fleetflow). "
        "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html",
    )
    stream_output: bool | None = Field(
        default=None, description="Copy the container's CloudWatch output into the flow run's logs."
    )

    # --- run-time behaviour -----------------------------------------------------------------
    task_customizations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="RFC 6902 JSON patch (a list, or its JSON string) applied last to the whole RunTask request.",
    )
    task_start_timeout_seconds: int = Field(
        default=300, description="Crash the run if its task is not RUNNING within this many seconds."
    )
    task_watch_poll_interval: float = Field(default=5.0, description="Seconds between DescribeTasks polls.")

    @model_validator(mode="before")
    @classmethod
    def _default_cloudwatch_logs(cls, data: Any) -> Any:
        """Streaming output needs CloudWatch logs, so logs default to ``stream_output`` (prefect-aws),
        except with a registered ``task_definition_arn``, whose own log configuration is used."""
        if isinstance(data, Mapping) and data.get("configure_cloudwatch_logs") is None:
            if not data.get("task_definition_arn"):
                return {**data, "configure_cloudwatch_logs": data.get("stream_output")}
        return data

    @field_validator("task_customizations", mode="before")
    @classmethod
    def _parse_customizations(cls, value: Any) -> list[dict[str, Any]]:
        """Accept a JSON string or a ``jsonpatch.JsonPatch`` too, as prefect-aws did."""
        return rq.parse_task_customizations(value)

    @field_validator("env", mode="before")
    @classmethod
    def _env_values_are_strings(cls, value: Any) -> Any:
        """Say which variable is not a string (ECS environment values are strings) instead of a type error."""
        if isinstance(value, Mapping):
            check_env(value)
        return value

    @model_validator(mode="after")
    def _validate(self) -> "ECSTask":
        validate_ecs_task(self)
        return self

    def summary(self) -> dict[str, Any]:
        """Kind and size for run records and the run tree."""
        cpu, memory = rq.override_sizes(self) if self.task_definition_arn else rq.resolve_cpu_memory(self)
        launch = self.launch_type or ("capacity providers" if self.capacity_provider_strategy else "FARGATE")
        return {"kind": self.kind, "cpu": cpu, "memory": memory, "launch_type": launch, "cluster": self.cluster}

    def launcher(self) -> Any:
        """The ECS launcher (imported lazily: only ``aws/`` needs boto3/aiobotocore)."""
        from .ecs_launcher import ECSLauncher

        return ECSLauncher()

    def preview(self, flow_run_id: Any = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Exactly what a launch would send, secrets masked: ``{"task_definition", "run_task_request"}``.

        ``overrides`` are dot-path infra overrides (``{"cpu": 512, "env.FOO": "x"}``). Values
        only known at launch use placeholders: the task definition ARN (account 000000000000)
        and subnets (``<discovered at launch>``).
        """
        from ..blocks.overrides import apply_overrides

        block = apply_overrides(self, overrides) if overrides else self
        region = _preview_region(block)
        plan = rq.plan_task_definition(block, region=region)
        run_id = flow_run_id or rq.PLACEHOLDER_FLOW_RUN_ID
        request = _placeholder_run_task_request(block, plan, region, run_id)
        return mask_preview(block, {"task_definition": plan.request, "run_task_request": request})


# --- validation ---------------------------------------------------------------------------------
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


def _check_placement(block: ECSTask) -> None:
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


def _check_role_arns(block: ECSTask) -> None:
    for field in ("execution_role_arn", "task_role_arn"):
        value = getattr(block, field)
        if value is not None and not _ROLE_ARN.match(value):
            raise ECSConfigError(
                f"{field}={value!r} is not an IAM role ARN; expected arn:aws:iam::<12-digit account>:role/<name>, "
                "e.g. arn:aws:iam::123456789012:role/fleetflow-task",
                field=field,
            )


def _check_task_definition_source(block: ECSTask) -> None:
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


def _check_arn_only_fields(block: ECSTask) -> None:
    for field in _DEFINITION_ONLY:
        if getattr(block, field):
            raise ECSConfigError(
                f"{field} cannot be applied to the registered task_definition_arn (it lives in the task "
                f"definition, which fleetflow never modifies); drop {field}, or replace task_definition_arn "
                "by task_definition={...} so fleetflow registers a definition including it",
                field=field,
            )


def _check_user_task_definition(block: ECSTask) -> None:
    td = block.task_definition
    mode = td.get("networkMode")
    if mode not in (None, "awsvpc") and rq.uses_fargate(block):
        raise ECSConfigError(
            f"task_definition.networkMode={mode!r} is not supported on Fargate; remove it (Fargate uses awsvpc)",
            field="task_definition.networkMode",
        )
    if not isinstance(td.get("containerDefinitions", []), list):
        raise ECSConfigError("task_definition.containerDefinitions must be a list", field="task_definition")


def _check_sizes(block: ECSTask) -> None:
    for field in ("cpu", "memory", "gpu"):
        value = getattr(block, field)
        if value is not None and value <= 0:
            raise ECSConfigError(f"{field} must be a positive integer, got {value}", field=field)
    if block.task_definition_arn and (block.cpu is None or block.memory is None):
        return  # the other half comes from the registered definition; checked after DescribeTaskDefinition
    if rq.uses_fargate(block):
        cpu, memory = rq.resolve_cpu_memory(block)
        check_fargate_size(cpu, memory)


def _check_gpu_and_storage(block: ECSTask) -> None:
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


def _check_logs(block: ECSTask) -> None:
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


def _check_secrets(block: ECSTask) -> None:
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


def _check_runtime_platform(block: ECSTask) -> None:
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


def _check_network(block: ECSTask) -> None:
    prefixes = {"subnets": "subnet-", "security_groups": "sg-"}
    for field, prefix in prefixes.items():
        bad = [v for v in getattr(block, field) if not str(v).startswith(prefix)]
        if bad:
            raise ECSConfigError(f"{field} must be IDs starting with {prefix!r}, got {bad}", field=field)
    if block.vpc_id is not None and not block.vpc_id.startswith("vpc-"):
        raise ECSConfigError(f"vpc_id must start with 'vpc-', got {block.vpc_id!r}", field="vpc_id")


def _check_timing(block: ECSTask) -> None:
    if block.task_start_timeout_seconds <= 0:
        raise ECSConfigError("task_start_timeout_seconds must be positive", field="task_start_timeout_seconds")
    if block.task_watch_poll_interval <= 0:
        raise ECSConfigError("task_watch_poll_interval must be positive", field="task_watch_poll_interval")
    if not rq.slugify_family(block.container_name) == block.container_name:
        raise ECSConfigError(
            f"container_name={block.container_name!r} may only contain letters, digits, '-' and '_'",
            field="container_name",
        )


def _check_requests(block: ECSTask) -> None:
    """Build both requests with placeholders: customizations must apply, overrides must fit."""
    region = rq.block_region(block, None) or "us-east-1"
    plan = rq.plan_task_definition(block, region=region)
    _placeholder_run_task_request(block, plan, region, rq.PLACEHOLDER_FLOW_RUN_ID)


_CHECKS = (
    _check_placement,
    _check_role_arns,
    _check_task_definition_source,
    _check_sizes,
    _check_gpu_and_storage,
    _check_logs,
    _check_secrets,
    _check_runtime_platform,
    _check_network,
    _check_timing,
    _check_requests,
)


def validate_ecs_task(block: ECSTask) -> None:
    """Every check, in order; raises the first :class:`ECSConfigError` (a ``ConfigurationError``).

    Runs at creation (model validator) and again in the launcher after ``infra_overrides`` are
    merged and before any AWS call, since ``model_copy(update=...)`` skips validators.
    """
    check_env(block.env)
    rq.parse_task_customizations(block.task_customizations)
    for check in _CHECKS:
        check(block)


# --- preview helpers ----------------------------------------------------------------------------
def _preview_region(block: ECSTask) -> str:
    """The region a launch would use: the credentials', else the AWS config's, else a placeholder."""
    found = rq.block_region(block, None)
    if found:
        return found
    try:  # botocore is imported lazily: previews work without the aws extra
        import botocore.session

        profile = getattr(block.aws_credentials, "profile_name", None)
        return botocore.session.Session(profile=profile).get_config_variable("region") or "<region>"
    except Exception:  # noqa: BLE001 - no config, unknown profile: a placeholder is fine here
        return "<region>"


def _placeholder_run_task_request(block: ECSTask, plan: rq.TaskDefinitionPlan, region: str, run_id: Any) -> dict:
    arn = plan.arn or rq.placeholder_task_definition_arn(region, plan.family)
    network = None
    if rq.needs_network_configuration(block, plan.request):
        network = rq.build_network_configuration(block, ["<discovered at launch>"])
    return rq.build_run_task_request(
        block,
        task_definition_arn=arn,
        flow_run_id=run_id,
        env={},
        command=block.command or rq.default_command(run_id),
        network_configuration=network,
        client_token=rq.make_client_token(run_id, 1),
        started_by="fleetflow",
        tags={},
    )


def _secret_values(value: Any) -> set[str]:
    """Every SecretStr value inside a block dump (credentials), to scrub from previews."""
    if isinstance(value, pydantic.SecretStr):
        return {value.get_secret_value()} if value.get_secret_value() else set()
    if isinstance(value, Mapping):
        return set().union(*(_secret_values(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(_secret_values(v) for v in value)) if value else set()
    return set()


def _scrub(value: Any, secrets: set[str]) -> Any:
    if isinstance(value, str):
        return MASK if value in secrets else value
    if isinstance(value, Mapping):
        if set(value) == {"name", "value"} and _SENSITIVE_ENV.search(str(value["name"])):
            return {"name": value["name"], "value": MASK}
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value


def mask_preview(block: ECSTask, preview: dict[str, Any]) -> dict[str, Any]:
    """Mask credential values anywhere and the values of secret-looking environment variables."""
    return _scrub(preview, _secret_values(block.model_dump(mode="python")))
