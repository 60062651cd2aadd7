"""Blocks and the ECS work pool from the outputs of ``terraform/examples/ecs-subflows``.

``fleetflow aws register-blocks --from-terraform DIR`` (and :func:`register_blocks_from_terraform`)
reads ``terraform output -json`` and saves what a deployment needs to run sub-flows on ECS:

==================  ==================  =======================================================
block               name                built from
==================  ==================  =======================================================
``AwsCredentials``  ``<prefix>-aws``    ``region`` (never keys: worker and tasks use IAM roles)
``S3``              ``<prefix>-code``   ``bucket_path`` (``<bucket>/bundles``)
``ECSTask``         ``<prefix>-ecs``    cluster, network, roles, image, log group, secret ARN
work pool           ``work_pool_name``  type ``ecs``, block ``ecs-task/<prefix>-ecs``
==================  ==================  =======================================================

Re-running is idempotent: a saved block whose content already matches is reported
``unchanged``; one that differs is only replaced with ``overwrite=True``, and nothing at all is
written when any of the four conflicts. (A bare process pool of the same name, which a worker
creates when it starts before this ran, is taken over: it has no settings to lose.)

Output names are a contract of the example (see its README): added to, never renamed.

The parsing and mapping are pure functions (:func:`normalize_outputs`, :func:`blocks_from_outputs`);
the only I/O is reading a JSON file or running ``terraform output -json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..blocks import Block
from ..exceptions import BlockAlreadyExists, ConfigurationError, ObjectNotFound
from .credentials import AwsClientParameters, AwsCredentials
from .ecs import ECSTask
from .s3 import S3

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

__all__ = [
    "OPTIONAL_OUTPUTS",
    "REQUIRED_OUTPUTS",
    "RegisteredBlocks",
    "RegisteredItem",
    "TerraformBlocks",
    "blocks_from_outputs",
    "normalize_outputs",
    "read_terraform_outputs",
    "register_blocks_from_terraform",
]

EXAMPLE = "terraform/examples/ecs-subflows"
# Outputs without which the ECS block cannot launch anything.
REQUIRED_OUTPUTS = (
    "region",
    "cluster_arn",
    "subnet_ids",
    "security_group_id",
    "execution_role_arn",
    "task_role_arn",
    "bucket_path",
    "log_group_name",
    "work_pool_name",
)
# Used when present (and not null); each has a sensible default otherwise.
OPTIONAL_OUTPUTS = ("image", "vpc_id", "assign_public_ip", "database_url_secret_arn", "results_path")
RESULT_STORAGE_ENV = "FLEETFLOW_RESULT_STORAGE"
DATABASE_URL_ENV = "FLEETFLOW_DATABASE_URL"
TERRAFORM_TIMEOUT_SECONDS = 120

Status = Literal["created", "unchanged", "updated"]


# --- reading outputs -------------------------------------------------------------------------------
def read_terraform_outputs(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """``{output name: value}`` from a Terraform directory, an outputs JSON file or a dict.

    A directory runs ``terraform output -json`` there (``$TERRAFORM`` or ``terraform`` on PATH);
    a file holds what that command printed; a dict is either shape (see :func:`normalize_outputs`).
    """
    if isinstance(source, Mapping):
        return normalize_outputs(source, origin="the outputs given")
    path = Path(source).expanduser().resolve()
    if path.is_dir():
        return normalize_outputs(_terraform_output_json(path), origin=f"`terraform output -json` in {path}")
    if path.is_file():
        return normalize_outputs(_read_json_file(path), origin=str(path))
    raise ConfigurationError(
        f"{path} is neither a Terraform directory nor an outputs JSON file; pass the directory you ran "
        f"`terraform apply` in (e.g. {EXAMPLE}) or the file `terraform output -json > outputs.json` wrote",
        field="from_terraform",
    )


def normalize_outputs(outputs: Mapping[str, Any], *, origin: str = "the outputs") -> dict[str, Any]:
    """Plain ``{name: value}`` from either ``terraform output -json``'s shape
    (``{name: {"value": ..., "type": ..., "sensitive": ...}}``) or an already plain mapping."""
    if not isinstance(outputs, Mapping):
        raise ConfigurationError(
            f"{origin} is not a JSON object of Terraform outputs (got {type(outputs).__name__})", field="from_terraform"
        )
    if not outputs:
        raise ConfigurationError(
            f"{origin} holds no Terraform outputs: run `terraform apply` in {EXAMPLE} (or your copy of it) first",
            field="from_terraform",
        )
    raw_shape = all(isinstance(v, Mapping) and "value" in v for v in outputs.values())
    return {str(k): (v["value"] if raw_shape else v) for k, v in outputs.items()}


def _read_json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read Terraform outputs from {path}: {exc}; write it with `terraform output -json > {path.name}`",
            field="from_terraform",
        ) from exc


def _terraform_output_json(directory: Path) -> Any:
    """What ``terraform output -json`` prints in ``directory`` (reads state only: no provider calls)."""
    binary = os.environ.get("TERRAFORM") or shutil.which("terraform")
    if not binary:
        raise ConfigurationError(
            f"terraform is not installed (looked at $TERRAFORM and PATH), so the outputs in {directory} cannot be "
            "read; install Terraform, or run `terraform output -json > outputs.json` where it is installed and "
            "pass that file instead",
            field="from_terraform",
        )
    try:
        proc = subprocess.run(
            [binary, "output", "-json", "-no-color"],
            cwd=directory, capture_output=True, text=True, timeout=TERRAFORM_TIMEOUT_SECONDS,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigurationError(f"running `terraform output -json` in {directory} failed: {exc}") from exc
    if proc.returncode != 0:
        detail = " ".join(line.strip() for line in proc.stderr.splitlines() if line.strip()) or f"exit {proc.returncode}"
        raise ConfigurationError(
            f"`terraform output -json` failed in {directory}: {detail} (is it the directory you ran "
            "`terraform init` and `terraform apply` in?)",
            field="from_terraform",
        )
    try:
        return json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"`terraform output -json` in {directory} printed something that is not JSON: {exc}") from exc


# --- outputs -> blocks (pure) ----------------------------------------------------------------------
class TerraformBlocks(BaseModel):
    """The unsaved blocks and pool settings built from one set of outputs."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    credentials: AwsCredentials
    storage: S3
    infrastructure: ECSTask
    results: S3 | None = Field(default=None, description="Where flow runs in ECS persist results (results_path).")
    work_pool_name: str
    names: dict[str, str] = Field(description="Block name by role: 'credentials', 'storage', 'infrastructure', 'results'.")


def block_names(prefix: str) -> dict[str, str]:
    """``<prefix>-aws``, ``<prefix>-code``, ``<prefix>-ecs``; the prefix must make valid block names."""
    from ..blocks.base import validate_block_name

    names = {"credentials": f"{prefix}-aws", "storage": f"{prefix}-code", "infrastructure": f"{prefix}-ecs",
             "results": f"{prefix}-results"}
    try:
        for name in names.values():
            validate_block_name(name)
    except ConfigurationError:
        raise ConfigurationError(
            f"invalid prefix {prefix!r}: block names are '<prefix>-aws' etc., so use lowercase letters, digits, "
            "'-', '_' or '.', starting with a letter or digit (e.g. 'prod')",
            field="prefix",
        ) from None
    return names


def blocks_from_outputs(
    outputs: Mapping[str, Any],
    *,
    prefix: str = "fleetflow",
    aws_client_parameters: Mapping[str, Any] | AwsClientParameters | None = None,
) -> TerraformBlocks:
    """Build (without saving) the three blocks and the pool settings from plain outputs.

    Access keys are never taken from outputs: in AWS the worker and the flow-run tasks get
    credentials from their IAM roles through the default chain, so only the region is stored.
    ``aws_client_parameters`` (e.g. ``{"endpoint_url": "http://127.0.0.1:5000"}`` for moto)
    is stored only when given.
    """
    names = block_names(prefix)
    values = _checked_outputs(outputs)
    creds_fields: dict[str, Any] = {"region_name": values["region"]}
    if aws_client_parameters is not None:
        creds_fields["aws_client_parameters"] = aws_client_parameters
    credentials = AwsCredentials(**creds_fields)
    storage = _built("S3", "bucket_path", lambda: S3(bucket_path=values["bucket_path"], credentials=credentials))
    results = None
    if "results_path" in values:
        results = _built("S3", "results_path", lambda: S3(bucket_path=values["results_path"], credentials=credentials))
    infrastructure = _built("ECSTask", "cluster_arn, subnet_ids, ...", lambda: _ecs_task(values, credentials, names))
    return TerraformBlocks(
        credentials=credentials,
        storage=storage,
        infrastructure=infrastructure,
        results=results,
        work_pool_name=str(values["work_pool_name"]),
        names=names,
    )


def _checked_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs we use, with null optional ones dropped; error listing every missing one."""
    missing = [name for name in REQUIRED_OUTPUTS if outputs.get(name) in (None, "", [])]
    if missing:
        raise ConfigurationError(
            f"Terraform outputs missing (or empty): {', '.join(missing)}; register-blocks expects the outputs of "
            f"{EXAMPLE} (see its README), so apply that example or add these outputs to your configuration",
            field=missing[0],
        )
    return {name: outputs[name] for name in REQUIRED_OUTPUTS + OPTIONAL_OUTPUTS if outputs.get(name) is not None}


def _ecs_task(values: Mapping[str, Any], credentials: AwsCredentials, names: Mapping[str, str]) -> ECSTask:
    fields: dict[str, Any] = {
        "aws_credentials": credentials,
        "cluster": values["cluster_arn"],
        "launch_type": "FARGATE",
        "subnets": _string_list(values["subnet_ids"], "subnet_ids"),
        "security_groups": [values["security_group_id"]],
        "execution_role_arn": values["execution_role_arn"],
        "task_role_arn": values["task_role_arn"],
        "configure_cloudwatch_logs": True,
        # The example's log group already exists, and its execution role may write streams but not
        # create groups, so ECS must not try (awslogs-create-group needs logs:CreateLogGroup):
        # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html
        "cloudwatch_logs_options": {"awslogs-group": values["log_group_name"], "awslogs-create-group": "false"},
    }
    for output, field in (("image", "image"), ("vpc_id", "vpc_id")):
        if output in values:
            fields[field] = values[output]
    if "assign_public_ip" in values:
        fields["assign_public_ip"] = _boolean(values["assign_public_ip"], "assign_public_ip")
    if "database_url_secret_arn" in values:
        # By reference: ECS injects the value at start; it never sits in a task definition or override.
        fields["secrets"] = {DATABASE_URL_ENV: values["database_url_secret_arn"]}
    if "results_path" in values:
        # Results must outlive the container and be readable by the parent: persist them in S3.
        fields["env"] = {RESULT_STORAGE_ENV: f"{S3.get_block_type_slug()}/{names['results']}"}
    return ECSTask(**fields)


def _built(kind: str, outputs: str, build: Any) -> Any:
    """Run ``build``; say which block and outputs a validation error came from."""
    try:
        return build()
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"the Terraform outputs ({outputs}) do not make a valid {kind} block: {exc}", field=exc.field
        ) from exc


def _string_list(value: Any, output: str) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigurationError(f"Terraform output {output} must be a list of strings, got {value!r}", field=output)


def _boolean(value: Any, output: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigurationError(f"Terraform output {output} must be true or false, got {value!r}", field=output)


# --- saving, idempotently --------------------------------------------------------------------------
class RegisteredItem(BaseModel):
    """One thing register-blocks saved (or found already saved)."""

    kind: str = Field(description="Block type slug ('aws-credentials', 's3', 'ecs-task') or 'work-pool'.")
    name: str
    status: Status

    @property
    def ref(self) -> str:
        """'slug/name' for a block (what work pools and deployments reference); the name for a pool."""
        return self.name if self.kind == "work-pool" else f"{self.kind}/{self.name}"


class RegisteredBlocks(BaseModel):
    """What :func:`register_blocks_from_terraform` did, in the order it was done."""

    credentials: RegisteredItem
    storage: RegisteredItem
    infrastructure: RegisteredItem
    results: RegisteredItem | None = None
    work_pool: RegisteredItem

    @property
    def items(self) -> list[RegisteredItem]:
        optional = [self.results] if self.results is not None else []
        return [self.credentials, self.storage, *optional, self.infrastructure, self.work_pool]

    @property
    def changed(self) -> bool:
        return any(item.status != "unchanged" for item in self.items)


def register_blocks_from_terraform(
    source: str | Path | Mapping[str, Any],
    *,
    prefix: str = "fleetflow",
    overwrite: bool = False,
    client: OrchestratorAPI | None = None,
    aws_client_parameters: Mapping[str, Any] | AwsClientParameters | None = None,
) -> RegisteredBlocks:
    """Save the ``AwsCredentials``, ``S3`` and ``ECSTask`` blocks and the ECS work pool that
    ``source`` (a Terraform directory, an outputs JSON file or a dict) describes.

    Idempotent: what already matches is left alone and reported ``unchanged``. If a saved
    block or pool differs, nothing is written unless ``overwrite`` (then it is ``updated``).
    """
    built = blocks_from_outputs(
        read_terraform_outputs(source), prefix=prefix, aws_client_parameters=aws_client_parameters
    )
    if client is None:
        from ..client import get_client

        client = get_client()
    names = built.names
    blocks = [
        ("credentials", built.credentials, names["credentials"]),
        ("storage", built.storage, names["storage"]),
        *([("results", built.results, names["results"])] if built.results is not None else []),
        ("infrastructure", built.infrastructure, names["infrastructure"]),
    ]
    pool_block = f"{ECSTask.get_block_type_slug()}/{names['infrastructure']}"
    plans = {role: _block_plan(client, block, name) for role, block, name in blocks}
    pool_plan, existing_pool = _pool_plan(client, built.work_pool_name, pool_block)
    conflicts = [detail for status, detail in [*plans.values(), pool_plan] if status == "conflict"]
    if conflicts and not overwrite:
        raise BlockAlreadyExists(
            f"{'; '.join(conflicts)}. Nothing was changed: pass --overwrite (overwrite=True) to replace "
            "them with what the Terraform outputs describe, or choose another --prefix"
        )
    items = {role: _save_block(client, block, name, plans[role][0]) for role, block, name in blocks}
    pool_item = _save_pool(client, built.work_pool_name, pool_block, pool_plan[0], existing_pool)
    return RegisteredBlocks(**items, work_pool=pool_item)


def _block_plan(client: OrchestratorAPI, block: Block, name: str) -> tuple[str, str]:
    """('create' | 'same' | 'conflict', description of the difference)."""
    slug = block.get_block_type_slug()
    try:
        doc = client.read_block_document(slug, name)
    except ObjectNotFound:
        return "create", ""
    differences = _differences(block, doc)
    if not differences:
        return "same", ""
    return "conflict", f"the {slug} block {name!r} already exists with different settings ({differences})"


def _differences(block: Block, doc: Any) -> str:
    """Changed fields as 'field: old -> new' (secrets masked); empty when identical."""
    try:
        saved = type(block).from_document_data(doc.data, doc.schema_version, name=doc.name)
    except Exception as exc:  # noqa: BLE001 - an unreadable saved block differs from any new one
        return f"the saved block cannot be loaded: {exc}"
    if doc.schema_version == block._schema_version and saved.model_dump() == block.model_dump():
        return ""
    old, new = _flatten(saved.masked_dict()), _flatten(block.masked_dict())
    changed = [key for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    shown = [f"{key}: {_short(old.get(key))} -> {_short(new.get(key))}" for key in changed[:3]]
    more = f", and {len(changed) - 3} more" if len(changed) > 3 else ""
    return ", ".join(shown) + more if shown else f"schema version {doc.schema_version} -> {block._schema_version}"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _save_block(client: OrchestratorAPI, block: Block, name: str, plan: str) -> RegisteredItem:
    if plan == "same":
        block._block_document_name = name
        status: Status = "unchanged"
    else:
        block.save(name, overwrite=plan == "conflict", client=client)
        status = "created" if plan == "create" else "updated"
    return RegisteredItem(kind=block.get_block_type_slug(), name=name, status=status)


def _pool_plan(client: OrchestratorAPI, name: str, block_ref: str) -> tuple[tuple[str, str], Any]:
    try:
        pool = client.read_work_pool(name)
    except ObjectNotFound:
        return ("create", ""), None
    if pool.type == "ecs" and pool.infrastructure_block == block_ref:
        return ("same", ""), pool
    if _placeholder_pool(pool):
        return ("adopt", ""), pool
    return (
        "conflict",
        f"the work pool {name!r} already exists as a {pool.type} pool using "
        f"{pool.infrastructure_block or 'no block'} (not ecs using {block_ref})",
    ), pool


def _placeholder_pool(pool: Any) -> bool:
    """A bare process pool, as a worker or deployment creates on first use of an unknown name.

    The Terraform worker service can start (and so create its pool this way) before
    register-blocks runs; such a pool holds no settings to lose, so it is taken over without
    ``overwrite``.
    """
    return pool.type == "process" and not pool.infrastructure_block and not pool.description and pool.concurrency_limit is None


def _save_pool(client: OrchestratorAPI, name: str, block_ref: str, plan: str, existing: Any) -> RegisteredItem:
    from ..orchestrator.schemas import WorkPool

    if plan == "same":
        return RegisteredItem(kind="work-pool", name=name, status="unchanged")
    pool = WorkPool(
        id="",
        name=name,
        type="ecs",
        infrastructure_block=block_ref,
        # Replacing keeps what a user set by hand since; only the type and block come from Terraform.
        description=(existing.description if existing else None) or "ECS pool registered from Terraform outputs.",
        concurrency_limit=existing.concurrency_limit if existing else None,
    )
    client.create_work_pool(pool, overwrite=plan != "create")
    return RegisteredItem(kind="work-pool", name=name, status="created" if plan == "create" else "updated")
