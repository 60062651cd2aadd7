"""The ``ECSTask`` block: run a flow as an AWS ECS task (Fargate, Fargate Spot, EC2, external).

Field names and meanings follow prefect-aws 0.3's ``ECSTask`` so a Prefect user migrates by
changing the import; the extra fields (subnets, security groups, capacity providers, secrets,
GPU...) replace the JSON patches Prefect users wrote for them. This module holds only the
configuration and its validation; requests are built by the pure functions in
:mod:`fleetflow.aws.ecs_requests` and sent by :mod:`fleetflow.aws.ecs_launcher`.

Everything AWS would reject later is checked (:mod:`fleetflow.aws.ecs_validation`) at creation
and again (``validate_ecs_task``) after a worker merges a deployment's ``infra_overrides``, with
a message naming the field and the fix.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal, Mapping

import pydantic
from pydantic import Field, field_validator, model_validator

from ..blocks.secrets import MASK
from ..infrastructure.base import Infrastructure
from . import ecs_requests as rq
from .credentials import AwsCredentials
from .ecs_validation import CPU_ARCHITECTURES, EPHEMERAL_STORAGE_GIB, OS_FAMILIES  # noqa: F401 (re-exported)
from .ecs_validation import check_env, placeholder_run_task_request, validate_ecs_task

LaunchType = Literal["FARGATE", "FARGATE_SPOT", "EC2", "EXTERNAL"]

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
        request = placeholder_run_task_request(block, plan, region, run_id)
        return mask_preview(block, {"task_definition": plan.request, "run_task_request": request})


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
