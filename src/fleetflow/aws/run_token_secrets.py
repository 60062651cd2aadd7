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

Deletion is keyed by the run, not by what one worker process remembers: a task's RunTask
overrides name the secret (:func:`token_run_of_task`), so a restarted worker that re-attaches
to a task deletes its secret when the task stops. Runs that finish while no worker watches
their task (the runner holds the lease; a restarted worker never needs to re-attach) are
covered by a sweep (:func:`sweepable`, ``ECSLauncher.sweep_run_tokens``): a page of secrets
under the prefix, in the block's account and region, deleted when their run is final in this
store and the secret was last written before the run ended (a relaunch writes it again).

https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerOverride.html (no ``secrets``)
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Awaitable, Callable, Mapping, Sequence

from ..exceptions import AwsError, ConfigurationError

SECRET_PREFIX = "fleetflow/run-tokens/"
TOKEN_ENV = "FLEETFLOW_API_KEY"
SECRET_ARN_ENV = "FLEETFLOW_API_KEY_SECRET_ARN"
RUN_TOKEN_PREFIX = "ffr_"  # fleetflow.orchestrator.keys.TOKEN_PREFIX

Call = Callable[..., Awaitable[dict[str, Any]]]  # ECSLauncher._call(client, operation, **params)


def secret_name(flow_run_id: str) -> str:
    return f"{SECRET_PREFIX}{flow_run_id}"


def run_of_secret(name: str | None) -> str | None:
    """The flow run id a secret named ``fleetflow/run-tokens/<id>`` belongs to (None otherwise)."""
    if not name or not name.startswith(SECRET_PREFIX):
        return None
    run_id = name[len(SECRET_PREFIX):]
    return run_id if run_id and "/" not in run_id else None


def token_run_of_task(task: Mapping[str, Any], flow_run_id: str | None) -> str | None:
    """``flow_run_id`` when ``task`` (a DescribeTasks entry) was launched with that run's token
    secret: a container override names ``FLEETFLOW_API_KEY_SECRET_ARN`` of that run's secret."""
    if not flow_run_id:
        return None
    wanted = f":secret:{secret_name(flow_run_id)}"
    for override in (task.get("overrides") or {}).get("containerOverrides") or []:
        for env in override.get("environment") or []:
            if env.get("name") == SECRET_ARN_ENV and wanted in (env.get("value") or ""):
                return flow_run_id
    return None


def sweepable(listed: Sequence[Mapping[str, Any]], ended: Mapping[str, dt.datetime]) -> list[str]:
    """Pure: the runs whose token secret the sweep deletes. ``listed``: ListSecrets entries;
    ``ended``: run id -> when it became final, for the listed runs that are final in this store
    (a run this store does not know may be another deployment's: left alone). A secret written
    after its run ended belongs to a relaunch of the run (``flow-run retry``): kept."""
    doomed = []
    for entry in listed:
        run_id = run_of_secret(entry.get("Name"))
        if run_id is None or run_id not in ended:
            continue
        changed = entry.get("LastChangedDate") or entry.get("CreatedDate")
        if isinstance(changed, dt.datetime) and ended[run_id] is not None and _utc(changed) > _utc(ended[run_id]):
            continue
        doomed.append(run_id)
    return doomed


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


async def list_token_secrets(call: Call, secretsmanager: Any, *, limit: int,
                             next_token: str | None = None) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    """One page (at most ``limit``) of secrets named under :data:`SECRET_PREFIX`, and the token
    of the next page (None at the end)."""
    params: dict[str, Any] = {"Filters": [{"Key": "name", "Values": [SECRET_PREFIX]}], "MaxResults": limit}
    if next_token:
        params["NextToken"] = next_token
    page = await call(secretsmanager, "ListSecrets", **params)
    # The name filter matches prefixes of words too: keep only names really under the prefix.
    listed = [s for s in page.get("SecretList") or [] if run_of_secret(s.get("Name"))]
    return listed, page.get("NextToken")


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
