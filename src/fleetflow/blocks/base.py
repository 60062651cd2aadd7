"""The Block base class: typed, named, persisted configuration.

A block is a pydantic model that knows how to save itself under a name in the state store
and load itself back. Secret fields are encrypted at rest and masked in every rendering.
Each saved document records the block's type slug and schema version, so a block saved by
an older fleetflow still loads: a class that changes shape bumps ``_schema_version`` and
upgrades old data in ``_migrate_data``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

import pydantic
from pydantic import BaseModel, ConfigDict, PrivateAttr
from pydantic_core import to_jsonable_python

from ..exceptions import BlockNotFound, BlockValidationError, ObjectAlreadyExists, ObjectNotFound, BlockAlreadyExists
from . import secrets as _secrets

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

_REGISTRY: dict[str, type["Block"]] = {}
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def format_validation_error(cls_name: str, exc: pydantic.ValidationError) -> str:
    """One readable line per problem: ``field: what is wrong``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(block)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown field; valid fields are listed by `fleetflow block types`")
        else:
            lines.append(f"{loc}: {err['msg']}")
    return f"invalid {cls_name}: " + "; ".join(lines)


def validate_block_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        from ..exceptions import InvalidNameError

        raise InvalidNameError(
            f"invalid block name {name!r}: use 1-100 lowercase letters, digits, '-', '_' or '.', "
            "starting with a letter or digit (e.g. 'prod-ecs')",
            field="name",
        )
    return name


BLOCK_REF_KEY = "$fleetflow_block"  # how a block is written when it travels (blocks/references.py)


class Block(BaseModel):
    """Base of every block (ECSTask, S3, AwsCredentials, Process, LocalFileSystem...)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, arbitrary_types_allowed=True)

    _block_type_slug: ClassVar[str] = ""
    _schema_version: ClassVar[int] = 1
    _description: ClassVar[str] = ""
    _block_document_name: str | None = PrivateAttr(default=None)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_block_abstract"):
            return  # bases like Infrastructure are not saveable types of their own
        if "_block_type_slug" not in cls.__dict__ or not cls.__dict__["_block_type_slug"]:
            cls._block_type_slug = _kebab(cls.__name__)
        _REGISTRY[cls._block_type_slug] = cls

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise BlockValidationError(format_validation_error(type(self).__name__, exc)) from None

    # ---- persistence ------------------------------------------------------------------------
    def __fleetflow_json__(self) -> dict[str, str]:
        """How the store's JSON codec writes a block: by reference (see blocks/references.py).
        TypeError for an unsaved block: the parameter checks turn it into an error naming the
        parameter, before any run exists."""
        if not self._block_document_name:
            kind = type(self).__name__
            raise TypeError(
                f"an unsaved {kind} block cannot travel to another process: save it first "
                f"({kind}(...).save('name')) and pass the saved block"
            )
        return {BLOCK_REF_KEY: f"{self.get_block_type_slug()}/{self._block_document_name}"}

    @classmethod
    def get_block_type_slug(cls) -> str:
        return cls._block_type_slug

    def to_document_data(self) -> dict[str, Any]:
        """JSON-ready field values with every secret encrypted."""
        dumped = self.model_dump(mode="python", exclude_unset=False)
        return to_jsonable_python(_secrets.encrypt_secrets(dumped))

    def to_open_data(self) -> dict[str, Any]:
        """JSON-ready field values with secrets as open markers, for the client to seal."""
        return to_jsonable_python(_secrets.open_secrets(self.model_dump(mode="python")))

    def masked_dict(self) -> dict[str, Any]:
        """JSON-ready field values with every secret shown as ``********``."""
        return to_jsonable_python(_secrets.mask_secrets(self.model_dump(mode="python")))

    @classmethod
    def _migrate_data(cls, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        """Upgrade data saved by an older schema version; override when the shape changes."""
        return data

    @classmethod
    def from_document_data(cls, data: dict[str, Any], schema_version: int = 1, name: str | None = None) -> "Block":
        plain = _secrets.decrypt_secrets(data)
        if schema_version < cls._schema_version:
            plain = cls._migrate_data(plain, schema_version)
        # Prefect-style `field: str = None`: a stored None stays the default instead of failing
        # validation against `str` (pydantic v1 made such fields Optional implicitly).
        fields = cls.model_fields
        plain = {k: v for k, v in plain.items() if not (v is None and k in fields and fields[k].default is None)}
        block = cls(**plain)
        block._block_document_name = name
        return block

    def save(self, name: str, overwrite: bool = False, client: OrchestratorAPI | None = None) -> str:
        """Persist under ``name``; refuses to replace an existing block unless ``overwrite``."""
        validate_block_name(name)
        client = client or _client()
        try:
            doc = client.save_block_document(
                self._block_type_slug,
                name,
                self.to_open_data(),
                schema_version=self._schema_version,
                overwrite=overwrite,
            )
        except ObjectAlreadyExists:
            raise BlockAlreadyExists(
                f"a {self._block_type_slug} block named {name!r} already exists; "
                f"pass overwrite=True to replace it, or choose another name"
            ) from None
        self._block_document_name = name
        return doc.id

    @classmethod
    def load(cls, name: str, client: OrchestratorAPI | None = None) -> "Block":
        """Load a saved block. On ``Block`` itself, ``name`` is ``'type-slug/name'``."""
        target, block_name = cls._resolve(name)
        client = client or _client()
        try:
            doc = client.read_block_document(target._block_type_slug, block_name)
        except ObjectNotFound as exc:
            raise BlockNotFound(str(exc), kind=target._block_type_slug, name=block_name) from None
        return target.from_document_data(doc.data, doc.schema_version, name=block_name)

    @classmethod
    def delete(cls, name: str, client: OrchestratorAPI | None = None) -> None:
        target, block_name = cls._resolve(name)
        (client or _client()).delete_block_document(target._block_type_slug, block_name)

    @classmethod
    def list_names(cls, client: OrchestratorAPI | None = None) -> list[str]:
        slug = cls._block_type_slug or None
        return [d.name for d in (client or _client()).read_block_documents(slug)]

    @classmethod
    def _resolve(cls, name: str) -> tuple[type["Block"], str]:
        if "/" in name:
            slug, block_name = name.split("/", 1)
            return get_block_class(slug), block_name
        if cls is Block:
            raise BlockValidationError(
                f"Block.load needs 'type/name' (e.g. 'ecs-task/{name}'); or call the type's own load, e.g. ECSTask.load({name!r})"
            )
        return cls, name


def _client() -> OrchestratorAPI:
    from ..client import get_client

    return get_client()


# The module defining each of fleetflow's own block types. Loading one block imports only its
# module: a runner loading its ``local-file-system`` storage must not pay for importing the
# AWS room (boto3, botocore: hundreds of ms of start-up in every launched process).
BUILTIN_BLOCK_MODULES: dict[str, str] = {
    "local-file-system": "fleetflow.filesystems",
    "process": "fleetflow.infrastructure",
    "secret": "fleetflow.blocks.system",
    "json": "fleetflow.blocks.system",
    "string": "fleetflow.blocks.system",
    "date-time": "fleetflow.blocks.system",
    "aws-credentials": "fleetflow.aws",
    "ecs-task": "fleetflow.aws",
    "s3": "fleetflow.aws",
    "s3-bucket": "fleetflow.aws",
}


def load_builtin_blocks() -> None:
    """Import the modules that define fleetflow's own block types so the registry knows them."""
    for mod in dict.fromkeys(BUILTIN_BLOCK_MODULES.values()):
        _import_optional(mod)


def _import_optional(module: str) -> None:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:  # optional extras (e.g. aws) not installed
        pass


def get_block_class(slug: str) -> type[Block]:
    """The block class registered under ``slug``; the error lists the known slugs."""
    if slug not in _REGISTRY and slug in BUILTIN_BLOCK_MODULES:
        _import_optional(BUILTIN_BLOCK_MODULES[slug])
    if slug not in _REGISTRY:
        load_builtin_blocks()
    try:
        return _REGISTRY[slug]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise BlockNotFound(f"unknown block type {slug!r}; known types: {known}", kind="block-type", name=slug) from None


def block_types() -> dict[str, type[Block]]:
    load_builtin_blocks()
    return dict(sorted(_REGISTRY.items()))
