"""Deployments: a flow packaged to run elsewhere, and ``run_deployment`` to launch one.

``Deployment.build_from_flow(...).apply()`` packs the project into one content-addressed
bundle, uploads it to the storage block (skipped when the digest is already there), checks
the default parameters and the ``infra_overrides`` against the flow and the infrastructure
block, and records the deployment. ``run_deployment`` creates a SCHEDULED run in the
deployment's pool, linked to the calling run, and waits for it.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .blocks import Block
from .exceptions import ConfigurationError, InvalidNameError, ObjectNotFound
from .orchestrator import schemas
from .orchestrator.names import check_name
from .run_deployments import run_deployment, run_deployments
from .worker.resolve import ensure_work_pool, load_pool_infrastructure, resolve_infrastructure

if TYPE_CHECKING:
    from .client.protocol import OrchestratorAPI

DEFAULT_POOL = "default"
DEFAULT_STORAGE = "local-file-system/default"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_deployment_name(name: str) -> str:
    if not _NAME_RE.match(name or "") or "/" in name:
        raise InvalidNameError(
            f"invalid deployment name {name!r}: use 1-100 letters, digits, '-', '_' or '.', "
            "no '/' (the full name is 'flow-name/deployment-name')",
            field="name",
        )
    return name


def block_ref(block: Block | None) -> str | None:
    """'slug/name' of a saved block; None for an unsaved one."""
    if block is None or block._block_document_name is None:
        return None
    return f"{block.get_block_type_slug()}/{block._block_document_name}"


def default_storage(client: OrchestratorAPI) -> Block:
    """The embedded default: a LocalFileSystem under FLEETFLOW_HOME/storage, saved once."""
    from .filesystems import LocalFileSystem
    from .settings import get_settings

    try:
        return Block.load(DEFAULT_STORAGE, client=client)
    except ObjectNotFound:
        storage = LocalFileSystem(basepath=str(get_settings().resolved_home() / "storage"))
        storage.save(DEFAULT_STORAGE.split("/")[1], overwrite=True, client=client)
        return storage


class Deployment(BaseModel):
    """What a deployment will be once applied (Prefect's ``Deployment`` builder)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    name: str = Field(description="Deployment name; the full name is 'flow-name/name'.")
    flow_name: str = Field(description="Name of the flow.")
    entrypoint: str = Field(description="'relative/path.py:function' inside the project.")
    path: str | None = Field(default=None, description="Project root to bundle (default: the current directory).")
    work_pool_name: str = Field(default=DEFAULT_POOL, description="Pool whose workers launch the runs.")
    work_queue_name: str | None = Field(default=None, description="Prefect 2 alias of work_pool_name.")
    infrastructure: Any = Field(default=None, description="Infrastructure block (saved or inline); default: the pool's.")
    storage: Any = Field(default=None, description="Storage block for the code bundle; default LocalFileSystem.")
    infra_overrides: dict[str, Any] = Field(default_factory=dict, description="Dot-path overrides, e.g. {'cpu': 512}.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Default parameters.")
    tags: list[str] = Field(default_factory=list)
    description: str | None = None
    version: str | None = None
    schedule: dict[str, Any] | None = Field(default=None, description="{'cron': '0 * * * *', 'timezone': 'UTC'} or {'interval': 3600}.")
    skip_upload: bool = Field(default=False, description="Do not upload a code bundle; runs import the code from path.")
    retries: int = Field(default=0, ge=0, description="Relaunches of a run whose infrastructure failed transiently "
                         "(Spot interruption, capacity, provisioning timeouts, image pull i/o timeout, worker lost).")
    retry_delay_seconds: float = Field(default=0.0, ge=0, description="Seconds before each infrastructure relaunch.")
    retry_on: list[str] = Field(default_factory=list, description="Also relaunch on these non-transient causes: "
                                "'out_of_memory', 'exit_code'.")
    flow: Any = Field(default=None, exclude=True, description="The Flow object, when built from one.")

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return None if value is None else str(value)  # Prefect's docs pass version=1

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_dict(cls, value: Any) -> Any:
        from .server.schemas.schedules import schedule_to_dict

        return schedule_to_dict(value)

    def load(self, client: OrchestratorAPI | None = None) -> bool:
        """Fill this object from the stored deployment 'flow_name/name' (Prefect's
        ``Deployment.load``); True when it exists, False (nothing changed) when it does not."""
        from .client import get_client

        client = client or get_client()
        try:
            stored = client.read_deployment_by_name(f"{self.flow_name}/{self.name}")
        except ObjectNotFound:
            return False
        for field in ("entrypoint", "infra_overrides", "parameters", "tags", "description", "version", "schedule"):
            setattr(self, field, getattr(stored, field))
        self.work_pool_name = stored.work_pool_name or self.work_pool_name
        if stored.path:
            self.path = stored.path
        if stored.storage_block:
            self.storage = Block.load(stored.storage_block, client=client)
        if stored.infrastructure_block:
            self.infrastructure = Block.load(stored.infrastructure_block, client=client)
        return True

    @classmethod
    def build_from_flow(cls, flow: Any, name: str, *, apply: bool = False, **kwargs: Any) -> "Deployment":
        """Describe a deployment of ``flow``; with ``apply=True`` also apply it."""
        root = Path(kwargs.pop("path", None) or os.getcwd()).resolve()
        entrypoint = kwargs.pop("entrypoint", None) or _entrypoint_of(flow, root)
        deployment = cls(name=check_deployment_name(name), flow_name=flow.name, entrypoint=entrypoint,
                         path=str(root), flow=flow, **kwargs)
        if apply:
            deployment.apply()
        return deployment

    # ---- checks -----------------------------------------------------------------------
    def load_flow(self) -> Any:
        if self.flow is None:
            from .entrypoints import load_flow_from_entrypoint

            self.flow = load_flow_from_entrypoint(self.entrypoint, Path(self.path or os.getcwd()).resolve())
        return self.flow

    def _infrastructure_block(self, client: OrchestratorAPI) -> Block:
        if self.infrastructure is not None:
            return self.infrastructure
        pool = ensure_work_pool(client, self.pool_name)
        return load_pool_infrastructure(client, pool)

    @property
    def pool_name(self) -> str:
        """The pool runs go to: work_pool_name when given, else a Prefect 2 work_queue_name
        (agents of that queue are workers of a pool of that name), else 'default'."""
        if "work_pool_name" in self.model_fields_set or not self.work_queue_name:
            return self.work_pool_name
        return self.work_queue_name

    def validate_all(self, client: OrchestratorAPI) -> dict[str, Any]:
        """Parameters against the flow signature, overrides against the block: before any upload."""
        from .blocks.overrides import apply_overrides
        from .engine.parameters import parameters_for_storage

        check_deployment_name(self.name)
        check_name("flow", self.flow_name, field="flow_name")  # 'team/etl' would deploy and never run
        check_name("work queue" if self.work_queue_name else "work pool", self.pool_name, field="work_pool_name")
        _check_retry_on(self.retry_on)
        flow = self.load_flow()
        flow.validate_parameters(dict(self.parameters), partial=True)  # raises ParameterValidationError
        apply_overrides(self._infrastructure_block(client), self.infra_overrides)
        if self.schedule:
            from .scheduler import next_slots

            next_slots(self.schedule, count=1)  # raises on a bad cron / interval
        return parameters_for_storage(self.parameters)

    # ---- apply ------------------------------------------------------------------------
    def apply(self, *, upload: bool | None = None, client: OrchestratorAPI | None = None, progress: Any = None) -> str:
        """Validate, upload the bundle (unless ``skip_upload``), record the deployment; returns its id."""
        from .bundles import build_bundle, upload_bundle
        from .client import get_client

        upload = not self.skip_upload if upload is None else upload
        client = client or get_client()
        parameters = self.validate_all(client)
        storage, digest = None, None
        if upload:
            storage = self.storage or default_storage(client)
            if block_ref(storage) is None:
                raise ConfigurationError("save the storage block first, e.g. storage.save('my-storage'), then pass it", field="storage")
            bundle = build_bundle(Path(self.path or os.getcwd()))
            upload_bundle(bundle, storage, progress=progress)
            digest = bundle.digest
        record = schemas.Deployment(
            id="", name=self.name, flow_name=self.flow_name, entrypoint=self.entrypoint,
            path=None if upload else self.path, storage_block=block_ref(storage) if upload else None,
            bundle_digest=digest, work_pool_name=self.pool_name, infra_overrides=self.infra_overrides,
            infrastructure_block=block_ref(self.infrastructure), infrastructure=_inline_infra(self.infrastructure),
            parameters=parameters, parameter_schema=self.flow.parameter_schema(), tags=self.tags,
            description=self.description or self.flow.description, version=self.version, schedule=self.schedule,
            infra_retries=self.retries, infra_retry_delay_seconds=self.retry_delay_seconds,
            infra_retry_on=list(self.retry_on) or None,
        )
        deployment_id = client.upsert_deployment(record).id
        self._assign_work_queue(client, deployment_id)
        return deployment_id

    def _assign_work_queue(self, client: OrchestratorAPI, deployment_id: str) -> None:
        """Put the deployment's runs in its work queue (created on first use, as in Prefect)."""
        if self.work_queue_name:
            from .exceptions import ObjectAlreadyExists

            try:
                client.create_work_queue(self.pool_name, self.work_queue_name)
            except ObjectAlreadyExists:
                pass
        client.set_deployment_work_queue(deployment_id, self.work_queue_name)

    # ---- YAML -------------------------------------------------------------------------
    def to_yaml(self, path: str | Path) -> None:
        data = self.model_dump(exclude={"flow", "infrastructure", "storage"}, exclude_none=True)
        data["infrastructure"] = block_ref(self.infrastructure) if self.infrastructure is not None else None
        data["storage"] = block_ref(self.storage) if self.storage is not None else None
        import yaml  # here, not at import: see Deployment.load_yaml

        Path(path).write_text(yaml.safe_dump(data, sort_keys=False))

    @classmethod
    def load_yaml(cls, path: str | Path, client: OrchestratorAPI | None = None) -> "Deployment":
        import yaml  # here: a run process (and the fork server's template) never reads YAML

        data = yaml.safe_load(Path(path).read_text()) or {}
        for key in ("infrastructure", "storage"):
            if data.get(key):
                data[key] = Block.load(data[key], client=client)
        return cls(**data)


def _check_retry_on(retry_on: list[str]) -> None:
    from .worker.retries import RETRY_ON_CHOICES

    unknown = sorted(set(retry_on) - set(RETRY_ON_CHOICES))
    if unknown:
        raise ConfigurationError(f"retry_on has unknown cause(s) {unknown}; choose from {list(RETRY_ON_CHOICES)}",
                                 field="retry_on")


def _entrypoint_of(flow: Any, root: Path) -> str:
    file = Path(inspect.getfile(flow.fn)).resolve()
    try:
        rel = file.relative_to(root)
    except ValueError:
        raise ConfigurationError(f"flow file {file} is outside the project path {root}; pass path= to the project root", field="path") from None
    return f"{rel.as_posix()}:{flow.fn.__name__}"


def _inline_infra(block: Block | None) -> dict[str, Any]:
    if block is None or block_ref(block) is not None:
        return {}
    # Open secrets: the client seals them with the key of whoever stores it (the embedded
    # client's, or the server's), so a worker over HTTP can open them again.
    return {"type": block.get_block_type_slug(), "data": block.to_open_data()}


__all__ = ["Deployment", "run_deployment", "run_deployments", "ensure_work_pool", "resolve_infrastructure"]
