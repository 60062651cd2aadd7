"""Per-run tokens to ECS containers through Secrets Manager, never as a plain environment variable.

A launch over HTTP carries the token the server minted for its run. Sent as a RunTask
environment override it would be readable by anyone allowed ``ecs:DescribeTasks``. ECS
``secrets`` cannot carry it either: ``secrets`` live in the task definition and RunTask's
``containerOverrides`` cannot add them, so a per-run secret there would mean one task
definition per run, which fleetflow never registers (definitions are content-addressed and
shared by every run; see :mod:`.ecs_requests`).

So the worker stores the token in a Secrets Manager secret of its own, one per run, under the
fixed prefix :data:`SECRET_PREFIX` (``fleetflow/run-tokens/<flow-run-id>``), and hands the
container only the secret's ARN (``FLEETFLOW_API_KEY_SECRET_ARN``, not a secret: it grants
nothing). The runner reads the token with the task role before it talks to the server
(:func:`fetch_token`); the IAM modules let the task role read only that prefix and the worker
write only that prefix. The worker deletes the secret (without a recovery window) once the
launch has finished, i.e. the run is final, and the token is dead by then anyway (it expires
when its run is final).

https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerOverride.html (no ``secrets``)
"""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable, Mapping

from ..exceptions import AwsError, ConfigurationError

SECRET_PREFIX = "fleetflow/run-tokens/"
TOKEN_ENV = "FLEETFLOW_API_KEY"
SECRET_ARN_ENV = "FLEETFLOW_API_KEY_SECRET_ARN"
RUN_TOKEN_PREFIX = "ffr_"  # fleetflow.orchestrator.keys.TOKEN_PREFIX

Call = Callable[..., Awaitable[dict[str, Any]]]  # ECSLauncher._call(client, operation, **params)


def secret_name(flow_run_id: str) -> str:
    return f"{SECRET_PREFIX}{flow_run_id}"


def carries_run_token(env: Mapping[str, str], mapped: Mapping[str, str] | None) -> bool:
    """Whether the runner environment holds a per-run token the block does not map itself."""
    value = env.get(TOKEN_ENV) or ""
    return value.startswith(RUN_TOKEN_PREFIX) and TOKEN_ENV not in (mapped or {})


async def store_token(call: Call, secretsmanager: Any, flow_run_id: str, token: str) -> str:
    """The run's secret holding ``token`` (created, or given a new value on a relaunch): its ARN."""
    name = secret_name(flow_run_id)
    try:
        created = await call(secretsmanager, "CreateSecret", Name=name, SecretString=token,
                             Description="fleetflow per-run token; deleted when the run is final",
                             Tags=[{"Key": "fleetflow:flow-run-id", "Value": flow_run_id}])  # fmt: skip
        return created["ARN"]
    except AwsError as exc:
        if exc.code != "ResourceExistsException":
            raise
    updated = await call(secretsmanager, "PutSecretValue", SecretId=name, SecretString=token)
    return updated["ARN"]


async def delete_token(call: Call, secretsmanager: Any, flow_run_id: str) -> None:
    """Delete the run's secret at once (no recovery window); an absent one is fine."""
    try:
        await call(secretsmanager, "DeleteSecret", SecretId=secret_name(flow_run_id), ForceDeleteWithoutRecovery=True)
    except AwsError as exc:
        if exc.code != "ResourceNotFoundException":
            raise


def with_secret_reference(env: Mapping[str, str], arn: str) -> dict[str, str]:
    """The runner environment with the token replaced by its secret's ARN."""
    out = {k: v for k, v in env.items() if k != TOKEN_ENV}
    out[SECRET_ARN_ENV] = arn
    return out


def reference_env(arn: str, creds: Any) -> dict[str, str]:
    """What the container gets instead of the token: the secret's ARN, and where the block's
    credentials send AWS requests when that is not AWS itself (a VPC endpoint, moto)."""
    env = {SECRET_ARN_ENV: arn}
    endpoint = creds.aws_client_parameters.endpoint_url
    if endpoint:
        env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = endpoint  # botocore's per-service endpoint variable
    return env


def fetch_token(arn: str) -> str:
    """Inside the container: the token, read with the task role (region from the ARN)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    region = arn.split(":")[3] if arn.count(":") >= 6 else None
    try:
        return boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=arn)["SecretString"]
    except (BotoCoreError, ClientError) as exc:
        raise ConfigurationError(
            f"cannot read this run's token from Secrets Manager ({arn}): {exc}. The task role needs "
            f"secretsmanager:GetSecretValue on secrets named {SECRET_PREFIX}* (terraform/modules/iam grants it).",
            field=SECRET_ARN_ENV,
        ) from exc


def resolve_token_from_environment(environ: Any = os.environ) -> bool:
    """Runner start-up: put the token named by ``FLEETFLOW_API_KEY_SECRET_ARN`` in this
    process's ``FLEETFLOW_API_KEY`` (the client reads it there). True when it did."""
    arn = environ.get(SECRET_ARN_ENV)
    if not arn or environ.get(TOKEN_ENV):
        return False
    environ[TOKEN_ENV] = fetch_token(arn)
    return True
