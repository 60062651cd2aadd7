"""Pure builders for the two ECS requests fleetflow sends: RegisterTaskDefinition and RunTask.

Everything here is a function from an ``ECSTask`` block (plus per-run values) to a plain dict,
with no I/O and no boto3 import, so requests can be tested, diffed, previewed and compared by
content without AWS (the Dagster ``dagster_aws/ecs/tasks.py`` approach).

Two rules keep task definitions reusable (Prefect registered one per run and hit rate limits):

* the task definition holds only what is the same for every run of the block; per-run values
  (flow run id, environment, command, labels) go in RunTask ``overrides`` and ``tags``;
* the family is ``fleetflow-<slug>-<hash12>`` where the hash covers the definition's content,
  so identical content maps to one family (registered once) and any change maps to a new one.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import jsonpatch
import jsonpointer

from ..exceptions import ECSConfigError, OverridesTooLargeError, TaskCustomizationError
from .fargate import DEFAULT_CPU, DEFAULT_MEMORY, default_fargate_size, fargate_memory_options  # noqa: F401 (re-export)

FAMILY_PREFIX = "fleetflow"
DEFAULT_LOG_GROUP = "/fleetflow/flows"
# A constant prefix: the stream name becomes <prefix>/<container>/<task-id>, which the
# launcher can compute from the task ARN. Never a per-run value (it would change the hash).
LOG_STREAM_PREFIX = "fleetflow"
DEFAULT_FAMILY_SLUG = "flow"
FARGATE_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})
PLACEHOLDER_ACCOUNT = "000000000000"
PLACEHOLDER_FLOW_RUN_ID = "00000000-0000-0000-0000-000000000000"

# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html:
# "A total of 8192 characters are allowed for overrides. This limit includes the JSON
# formatting characters of the override structure."
OVERRIDES_CHAR_LIMIT = 8192
MAX_CLIENT_TOKEN_CHARS = 64  # RunTask clientToken: "Up to 64 ASCII characters"
MAX_STARTED_BY_CHARS = 36  # RunTask startedBy: "up to 36 letters ..."
MAX_FAMILY_CHARS = 255

# Fields DescribeTaskDefinition returns that RegisterTaskDefinition refuses; users often paste
# a described definition into ``task_definition``.
_READ_ONLY_TD_FIELDS = (
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
)
_PATCH_OPS = {"add", "remove", "replace", "move", "copy", "test"}


# --- launch type and sizes ------------------------------------------------------------------
def effective_launch_type(block: Any) -> str | None:
    """The launch type we mean: unset is FARGATE (Prefect's default) unless a strategy is given."""
    if block.launch_type:
        return block.launch_type
    return None if block.capacity_provider_strategy else "FARGATE"


def uses_fargate(block: Any) -> bool:
    """True when the task runs on Fargate (launch type or Fargate capacity providers)."""
    if block.capacity_provider_strategy and not block.launch_type:
        return all(s.get("capacityProvider") in FARGATE_PROVIDERS for s in block.capacity_provider_strategy)
    return effective_launch_type(block) in FARGATE_PROVIDERS


def _td_size(block: Any, key: str) -> int | None:
    value = (block.task_definition or {}).get(key)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ECSConfigError(
            f"task_definition.{key}={value!r} must be a whole number ({key} units as in '1024'); "
            f"or drop it and set the block's `{key}` field",
            field=f"task_definition.{key}",
        ) from None


def resolve_cpu_memory(block: Any) -> tuple[int, int]:
    """Task cpu units and memory MiB: the block's, else the user's task definition's, else defaults."""
    cpu = block.cpu if block.cpu is not None else _td_size(block, "cpu")
    memory = block.memory if block.memory is not None else _td_size(block, "memory")
    if uses_fargate(block):
        return default_fargate_size(cpu, memory)
    return int(cpu or DEFAULT_CPU), int(memory or DEFAULT_MEMORY)


def requires_compatibility(block: Any) -> str:
    """The ``requiresCompatibilities`` entry for this block's launch type."""
    if uses_fargate(block):
        return "FARGATE"
    return "EXTERNAL" if effective_launch_type(block) == "EXTERNAL" else "EC2"


# --- task customizations (RFC 6902 JSON patch) -----------------------------------------------
def parse_task_customizations(value: Any) -> list[dict[str, Any]]:
    """Normalise ``task_customizations`` (list, JSON string or ``jsonpatch.JsonPatch``) to a list of ops."""
    if value is None or value == "":
        return []
    if isinstance(value, jsonpatch.JsonPatch):
        value = value.patch
    if isinstance(value, (str, bytes)):
        value = _loads_patch(value)
    if not isinstance(value, (list, tuple)):
        raise TaskCustomizationError(
            f"task_customizations must be a list of JSON patch operations, got {type(value).__name__}; "
            'e.g. [{"op": "add", "path": "/networkConfiguration/awsvpcConfiguration/assignPublicIp", '
            '"value": "DISABLED"}]',
            field="task_customizations",
        )
    ops = [dict(op) if isinstance(op, Mapping) else op for op in value]
    for index, op in enumerate(ops):
        check_patch_operation(index, op)
    return ops


def _loads_patch(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TaskCustomizationError(
            f"task_customizations is not valid JSON ({exc}); pass a JSON list of RFC 6902 operations "
            'like [{"op": "replace", "path": "/launchType", "value": "EC2"}]',
            field="task_customizations",
        ) from None


def check_patch_operation(index: int, op: Any) -> None:
    """Check one RFC 6902 operation's shape; the error names its index, op and path."""
    where = f"task_customizations[{index}]"
    if not isinstance(op, dict):
        raise TaskCustomizationError(f"{where} must be an object with 'op' and 'path', got {op!r}", field="task_customizations")
    name, path = op.get("op"), op.get("path")
    label = f"{where} (op={name!r}, path={path!r})"
    if name not in _PATCH_OPS:
        raise TaskCustomizationError(
            f"{label}: unknown op; use one of {', '.join(sorted(_PATCH_OPS))}", field="task_customizations"
        )
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise TaskCustomizationError(
            f"{label}: path must be a JSON pointer starting with '/', e.g. '/overrides/cpu'",
            field="task_customizations",
        )
    if name in {"add", "replace", "test"} and "value" not in op:
        raise TaskCustomizationError(f"{label}: '{name}' needs a 'value'", field="task_customizations")
    if name in {"move", "copy"} and not isinstance(op.get("from"), str):
        raise TaskCustomizationError(f"{label}: '{name}' needs a 'from' JSON pointer", field="task_customizations")


def apply_task_customizations(request: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply the patch one operation at a time so a failure names the operation that failed."""
    doc = copy.deepcopy(request)
    for index, op in enumerate(ops):
        try:
            doc = jsonpatch.apply_patch(doc, [op])
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, KeyError, IndexError, TypeError) as exc:
            raise TaskCustomizationError(
                f"task_customizations[{index}] (op={op.get('op')!r}, path={op.get('path')!r}) does not apply "
                f"to the RunTask request: {exc}. Paths point into the request shown by ECSTask.preview(); "
                "use 'add' to create a key that is not there yet.",
                field="task_customizations",
            ) from exc
    return doc


# --- task definition ---------------------------------------------------------------------------
def canonical_json(value: Any) -> str:
    """Key-sorted, compact JSON: the form hashed and size-checked."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def task_definition_digest(td: Mapping[str, Any]) -> str:
    """SHA-256 of a task definition's canonical JSON."""
    return hashlib.sha256(canonical_json(td).encode()).hexdigest()


def slugify_family(text: str) -> str:
    """AWS family names allow letters, digits, '-' and '_' only."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")
    return slug or DEFAULT_FAMILY_SLUG


def family_for(slug_source: str | None, content: Mapping[str, Any]) -> str:
    """``fleetflow-<slug>-<hash12>``: the hash covers everything but the family itself."""
    digest = task_definition_digest({k: v for k, v in content.items() if k != "family"})[:12]
    room = MAX_FAMILY_CHARS - len(FAMILY_PREFIX) - len(digest) - 2
    slug = slugify_family(slug_source or DEFAULT_FAMILY_SLUG)[:room]
    return f"{FAMILY_PREFIX}-{slug}-{digest}"


def find_container(containers: Iterable[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The container (definition) called ``name``, or None."""
    return next((c for c in containers if c.get("name") == name), None)


@functools.lru_cache(maxsize=1)
def default_image() -> str:
    """The published fleetflow runtime image for the installed version (see infra/Dockerfile)."""
    import sys
    from importlib import metadata

    try:
        version = metadata.version("fleetflow")
    except metadata.PackageNotFoundError:  # pragma: no cover - source checkout without install
        version = "latest"
    return f"fleetflow/fleetflow:{version}-python{sys.version_info.major}.{sys.version_info.minor}"


def _base_task_definition(block: Any) -> dict[str, Any]:
    td = copy.deepcopy(block.task_definition or {})
    for key in _READ_ONLY_TD_FIELDS:
        td.pop(key, None)
    td.setdefault("containerDefinitions", [])
    return td


def _flow_container(td: dict[str, Any], name: str) -> dict[str, Any]:
    container = find_container(td["containerDefinitions"], name)
    if container is None:
        container = {"name": name}
        td["containerDefinitions"].append(container)
    return container


def log_configuration(block: Any, region: str) -> dict[str, Any]:
    """awslogs driver; group and prefix are constants so every run shares one definition."""
    options = {
        "awslogs-create-group": "true",
        "awslogs-group": DEFAULT_LOG_GROUP,
        "awslogs-region": region,
        "awslogs-stream-prefix": LOG_STREAM_PREFIX,
    }
    return {"logDriver": "awslogs", "options": {**options, **(block.cloudwatch_logs_options or {})}}


def block_region(block: Any, region: str | None) -> str | None:
    """The region passed by the caller, else the one on the block's credentials."""
    creds = getattr(block, "aws_credentials", None)
    return region or (getattr(creds, "region_name", None) if creds else None)


def _merge_named(existing: list[dict[str, Any]] | None, ours: list[dict[str, Any]], key: str = "name") -> list:
    mine = {item[key] for item in ours}
    return [item for item in existing or [] if item.get(key) not in mine] + ours


def _configure_container(container: dict[str, Any], td: dict[str, Any], block: Any, region: str | None) -> None:
    container["image"] = block.image or container.get("image") or default_image()
    container.setdefault("essential", True)
    if len(td["containerDefinitions"]) == 1:
        # Container-level sizes: required on EC2 without task sizes, and moto's Fargate
        # RunTask needs container memory. With sidecars, the user sizes containers.
        container["cpu"], container["memory"] = resolve_cpu_memory(block)
    unset = {k for k, v in (block.env or {}).items() if v is None}
    if container.get("environment"):
        container["environment"] = [e for e in container["environment"] if e.get("name") not in unset]
    if block.secrets:
        ours = [{"name": k, "valueFrom": v} for k, v in sorted(block.secrets.items())]
        container["secrets"] = _merge_named(container.get("secrets"), ours)
    if block.gpu:
        ours = [{"type": "GPU", "value": str(block.gpu)}]
        container["resourceRequirements"] = _merge_named(container.get("resourceRequirements"), ours, "type")
    if block.configure_cloudwatch_logs:
        container["logConfiguration"] = log_configuration(block, _require_region(block, region))


def _require_region(block: Any, region: str | None) -> str:
    found = block_region(block, region)
    if not found:
        raise ECSConfigError(
            "configure_cloudwatch_logs needs an AWS region for the awslogs driver; set "
            "aws_credentials.region_name (or AWS_DEFAULT_REGION where the worker runs)",
            field="aws_credentials.region_name",
        )
    return found


def network_mode(block: Any) -> str | None:
    """awsvpc on Fargate (the only mode it supports); on EC2 the user's choice, awsvpc if subnets are set."""
    chosen = (block.task_definition or {}).get("networkMode")
    if uses_fargate(block):
        return "awsvpc"
    if chosen is None and (block.subnets or block.security_groups):
        return "awsvpc"
    return chosen


def _configure_task(td: dict[str, Any], block: Any) -> None:
    cpu, memory = resolve_cpu_memory(block)
    td["cpu"], td["memory"] = str(cpu), str(memory)
    compat = td.get("requiresCompatibilities") or []
    needed = requires_compatibility(block)
    td["requiresCompatibilities"] = compat if needed in compat else [*compat, needed]
    mode = network_mode(block)
    if mode:
        td["networkMode"] = mode
    optional = {
        "executionRoleArn": block.execution_role_arn,
        "taskRoleArn": block.task_role_arn,
        "runtimePlatform": dict(block.runtime_platform) if block.runtime_platform else None,
        "ephemeralStorage": {"sizeInGiB": block.ephemeral_storage_gib} if block.ephemeral_storage_gib else None,
    }
    td.update({k: v for k, v in optional.items() if v is not None})
    if block.tags:
        check_tags(block.tags, "tags")
        td["tags"] = _merge_named(td.get("tags"), tag_list(block.tags), "key")


def build_task_definition(block: Any, *, region: str | None = None) -> dict[str, Any]:
    """The RegisterTaskDefinition request for ``block``: run-independent, content-addressed family.

    ``region`` (the ECS client's) is needed only for the awslogs driver; it defaults to the
    block's ``aws_credentials.region_name``. The user's own ``task_definition`` is the base;
    our fields are set on top of it, like prefect-aws.
    """
    td = _base_task_definition(block)
    _configure_container(_flow_container(td, block.container_name), td, block, region)
    _configure_task(td, block)
    slug_source = block.family or (block.task_definition or {}).get("family")
    td["family"] = family_for(slug_source, td)
    return td


@dataclass(frozen=True)
class TaskDefinitionPlan:
    """What the launcher should do: use ``arn`` as is, or register/reuse ``request``."""

    arn: str | None
    request: dict[str, Any] | None

    @property
    def family(self) -> str | None:
        return self.request["family"] if self.request else None


def registration_block(block: Any) -> Any:
    """The block a task definition is built from: without cpu/memory, which every run sends in
    RunTask ``overrides``; so runs of one image and configuration share one definition whatever
    their size. (With a user's ``task_definition`` its own sizes are the base.)"""
    if block.task_definition_arn or (block.cpu is None and block.memory is None):
        return block
    return block.model_copy(update={"cpu": None, "memory": None})


def plan_task_definition(block: Any, *, region: str | None = None) -> TaskDefinitionPlan:
    """An explicit ``task_definition_arn`` is used as given (never registered or changed);
    otherwise the definition built from the block (on top of ``task_definition``, without the
    per-run cpu/memory) is registered once per content."""
    if block.task_definition_arn:
        return TaskDefinitionPlan(arn=block.task_definition_arn, request=None)
    return TaskDefinitionPlan(arn=None, request=build_task_definition(registration_block(block), region=region))


def placeholder_task_definition_arn(region: str, family: str) -> str:
    """A realistic-looking ARN for previews and validation, before anything is registered."""
    return f"arn:aws:ecs:{region}:{PLACEHOLDER_ACCOUNT}:task-definition/{family}:1"


# --- comparing a registered definition with the wanted one --------------------------------
# Keys AWS reports elsewhere (tags come from DescribeTaskDefinition's top-level ``tags``) or
# that are encoded in the family name already.
_NOT_COMPARED = frozenset({"family", "tags"})


def task_definitions_match(registered: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """True when ``registered`` (as DescribeTaskDefinition returns it) has every value we set.

    Only keys present in ``wanted`` are compared: AWS fills in defaults (``portMappings: []``,
    ``volumesFrom: []``...) that we never set and must not count as differences. Containers
    and other named lists are matched by name; scalars compare as strings ("1024" == 1024).
    """
    return all(
        _subset_match(registered.get(key), value) for key, value in wanted.items() if key not in _NOT_COMPARED
    )


def _subset_match(have: Any, want: Any) -> bool:
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(_subset_match(have.get(k), v) for k, v in want.items())
    if isinstance(want, (list, tuple)):
        return _list_match(have, want)
    if want is None:
        return have is None
    if have is None:
        return False
    return str(have).lower() == str(want).lower() if isinstance(want, bool) else str(have) == str(want)


def _list_match(have: Any, want: list | tuple) -> bool:
    if not want:
        return not have
    if not isinstance(have, (list, tuple)) or len(have) != len(want):
        return False
    if all(isinstance(w, Mapping) and "name" in w for w in want):
        by_name = {h.get("name"): h for h in have if isinstance(h, Mapping)}
        return all(_subset_match(by_name.get(w["name"]), w) for w in want)
    if all(isinstance(w, str) for w in want):
        return sorted(map(str, have)) == sorted(want)  # e.g. requiresCompatibilities
    return all(_subset_match(h, w) for h, w in zip(have, want))


# --- RunTask -------------------------------------------------------------------------------------
def tag_list(tags: Mapping[str, Any]) -> list[dict[str, str]]:
    """ECS's ``[{key, value}]`` tag form, sorted for stable requests."""
    return [{"key": str(k), "value": str(v)} for k, v in sorted(tags.items())]


# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Tag.html
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 50, 128, 256


def check_tags(tags: Mapping[str, Any], field: str) -> None:
    """AWS tag limits, checked before sending: 50 tags, keys <= 128, values <= 256, no 'aws:' prefix."""
    if len(tags) > MAX_TAGS:
        raise ECSConfigError(f"{len(tags)} tags is over AWS's limit of {MAX_TAGS}; remove some from `{field}`", field=field)
    for key, value in tags.items():
        if not key or len(key) > MAX_TAG_KEY or len(str(value)) > MAX_TAG_VALUE or key.lower().startswith("aws:"):
            raise ECSConfigError(
                f"tag {key!r} in `{field}` breaks AWS's tag rules: keys 1-{MAX_TAG_KEY} characters not starting "
                f"with 'aws:', values up to {MAX_TAG_VALUE} characters",
                field=field,
            )


def default_command(flow_run_id: Any) -> list[str]:
    """What the container runs when the block sets no ``command``: the fleetflow runner."""
    return ["python", "-m", "fleetflow.runner", str(flow_run_id)]


def make_client_token(flow_run_id: Any, attempt: int) -> str:
    """RunTask idempotency token: same run and attempt -> same token -> at most one task.

    Readable when it fits AWS's 64-ASCII-character limit, else a SHA-256 hex digest (64).
    """
    raw = f"fleetflow-{flow_run_id}-{attempt}"
    if len(raw) <= MAX_CLIENT_TOKEN_CHARS and raw.isascii() and raw.isprintable():
        return raw
    return hashlib.sha256(raw.encode()).hexdigest()


def merged_environment(block: Any, env: Mapping[str, str | None]) -> list[dict[str, str]]:
    """The launcher's runtime env with the block's ``env`` on top; None unsets a variable."""
    merged = {**(env or {}), **(block.env or {})}
    return [{"name": k, "value": v} for k, v in merged.items() if v is not None]


def check_no_secret_in_environment(block: Any, environment: list[dict[str, Any]]) -> None:
    """A name in ``secrets`` must never also be a plain environment override: the override would
    replace the secret ECS injects from SSM / Secrets Manager by a value visible in the API."""
    clash = sorted({e.get("name") for e in environment} & set(block.secrets or {}))
    if clash:
        raise ECSConfigError(
            f"environment variable(s) {', '.join(clash)} are also in `secrets`; remove them from `env` "
            "(ECS injects secrets from SSM / Secrets Manager, never as plain environment overrides)",
            field="env",
        )


def override_sizes(block: Any) -> tuple[int | None, int | None]:
    """cpu/memory to override per run. With a user's ``task_definition_arn`` only what the block
    sets explicitly (never silently shrink their definition); otherwise the resolved task size."""
    if block.task_definition_arn:
        return block.cpu, block.memory
    return resolve_cpu_memory(block)


def _sizes_on_container(block: Any) -> bool:
    containers = (block.task_definition or {}).get("containerDefinitions") or []
    others = [c for c in containers if c.get("name") != block.container_name]
    return not others


def build_overrides(block: Any, *, env: Mapping[str, str | None], command: list[str] | None) -> dict[str, Any]:
    """RunTask ``overrides``: the only place per-run values go."""
    cpu, memory = override_sizes(block)
    container: dict[str, Any] = {"name": block.container_name, "environment": merged_environment(block, env)}
    if command:
        container["command"] = [str(part) for part in command]
    if _sizes_on_container(block):
        container.update({k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None})
    overrides: dict[str, Any] = {"containerOverrides": [container]}
    sizes = {"cpu": cpu, "memory": memory}
    overrides.update({k: str(v) for k, v in sizes.items() if v is not None})
    roles = {"taskRoleArn": block.task_role_arn, "executionRoleArn": block.execution_role_arn}
    overrides.update({k: v for k, v in roles.items() if v})
    return overrides


def placement(block: Any) -> dict[str, Any]:
    """``launchType`` or ``capacityProviderStrategy`` (AWS rejects both together).

    FARGATE_SPOT is not a launch type: it is the FARGATE_SPOT capacity provider.
    """
    if block.capacity_provider_strategy:
        return {"capacityProviderStrategy": [dict(s) for s in block.capacity_provider_strategy]}
    launch_type = effective_launch_type(block)
    if launch_type == "FARGATE_SPOT":
        return {"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]}
    return {"launchType": launch_type}


def needs_network_configuration(block: Any, task_definition: Mapping[str, Any] | None = None) -> bool:
    """awsvpc tasks need subnets in the RunTask request."""
    mode = (task_definition or {}).get("networkMode") or network_mode(block)
    return mode == "awsvpc"


def build_network_configuration(block: Any, discovered_subnets: list[str] | None = None) -> dict[str, Any]:
    """``awsvpcConfiguration`` from explicit fields, falling back to subnets found in the VPC.

    ``securityGroups`` is always present (possibly empty: the VPC default group); assignPublicIp
    defaults to ENABLED like prefect-aws, because tasks in a default VPC's public subnets cannot
    pull images without it.
    """
    public = "DISABLED" if block.assign_public_ip is False else "ENABLED"
    return {
        "awsvpcConfiguration": {
            "subnets": list(block.subnets or discovered_subnets or []),
            "securityGroups": list(block.security_groups or []),
            "assignPublicIp": public,
        }
    }


def _check_token(name: str, value: str, limit: int) -> None:
    if not value or len(value) > limit or not value.isascii():
        raise ECSConfigError(
            f"{name} must be 1-{limit} ASCII characters, got {len(value or '')}: {value!r}", field=name
        )


def overrides_size(request: Mapping[str, Any]) -> int:
    """Characters AWS counts against the overrides limit: compact JSON of ``overrides``."""
    return len(json.dumps(request.get("overrides", {}), separators=(",", ":")))


def check_overrides_size(request: Mapping[str, Any]) -> None:
    """Fail before sending when ``overrides`` exceed 8192 characters, saying what is big."""
    size = overrides_size(request)
    if size <= OVERRIDES_CHAR_LIMIT:
        return
    parts = _largest_override_parts(request.get("overrides", {}))
    raise OverridesTooLargeError(
        f"RunTask overrides are {size} characters, over AWS's {OVERRIDES_CHAR_LIMIT}-character limit "
        f"(largest: {parts}). Move large values out of `env` into `secrets` (SSM Parameter Store / "
        "Secrets Manager) or the image, shorten `command`, or trim task_customizations on /overrides. "
        "See https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html",
        field="env",
    )


def _largest_override_parts(overrides: Mapping[str, Any]) -> str:
    sizes: dict[str, int] = {}
    for container in overrides.get("containerOverrides", []):
        for env in container.get("environment", []):
            sizes[f"env {env.get('name')}"] = len(json.dumps(env, separators=(",", ":")))
        sizes["command"] = len(json.dumps(container.get("command", []), separators=(",", ":")))
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{name} {size} chars" for name, size in top)


def build_run_task_request(
    block: Any,
    *,
    task_definition_arn: str,
    flow_run_id: Any,
    env: Mapping[str, str | None],
    command: list[str] | None,
    network_configuration: dict[str, Any] | None,
    client_token: str,
    started_by: str,
    tags: Mapping[str, str],
) -> dict[str, Any]:
    """The RunTask request for one flow run.

    ``env`` is the launcher's runtime environment (the block's ``env`` is layered on top),
    ``tags`` the launcher's per-run tags (the block's ``labels`` are added, the flow run id is
    tagged); ``task_customizations`` are applied last, to the whole request, as prefect-aws
    does; then the overrides size and the secrets rule are checked on the final request.
    """
    _check_token("client_token", client_token, MAX_CLIENT_TOKEN_CHARS)
    _check_token("started_by", started_by, MAX_STARTED_BY_CHARS)
    # Block tags normally ride on the task definition (propagateTags); a user's registered
    # definition does not carry them, so they go on the task directly.
    block_tags = (block.tags or {}) if block.task_definition_arn else {}
    run_tags = {"fleetflow:flow-run-id": str(flow_run_id), **block_tags, **(block.labels or {}), **(tags or {})}
    check_tags(run_tags, "labels")
    request: dict[str, Any] = {
        "taskDefinition": task_definition_arn,
        "overrides": build_overrides(block, env=env, command=command),
        "clientToken": client_token,
        "startedBy": started_by,
        "tags": tag_list(run_tags),
        "propagateTags": "TASK_DEFINITION",
        "enableECSManagedTags": True,
        **placement(block),
    }
    if block.cluster:
        request["cluster"] = block.cluster
    if network_configuration:
        request["networkConfiguration"] = copy.deepcopy(network_configuration)
    request = apply_task_customizations(request, parse_task_customizations(block.task_customizations))
    check_overrides_size(request)
    for container in request.get("overrides", {}).get("containerOverrides", []):
        check_no_secret_in_environment(block, container.get("environment") or [])
    return request
