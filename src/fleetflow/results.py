"""The results room: persisting return values so any process can read a run's result.

Small JSON-able values are stored inline in the final state's data (no extra I/O on the hot
path); anything else is pickled to a result storage (a local folder by default, S3, or a
saved storage block) under a content key, and the state records a reference to it.

Reading a reference goes through a registry keyed by the storage descriptor's ``type``
(``{"type": "local", ...}``, ``{"type": "s3", ...}``, ``{"type": "block", ...}``): each entry
is a factory, or the name of the module that registers it on import. So this room names
``fleetflow.aws.s3`` only as a string, and the store (whose ``FlowRun.result()`` calls in here
through :func:`fleetflow.orchestrator.schemas.set_result_loader`) imports neither.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path
import importlib
from typing import Any, Callable, Protocol

from .blocks.references import contains_reference, decode_blocks, encode_blocks
from .exceptions import MissingResult
from .orchestrator.schemas import register_result_loader
from .settings import get_settings

INLINE_LIMIT = 16 * 1024  # bytes of JSON kept in the state row itself


class ResultStorage(Protocol):
    """Where pickled results live. LocalFileSystem and S3 storage blocks implement it too."""

    def write_result(self, key: str, data: bytes) -> None: ...

    def read_result(self, key: str) -> bytes: ...


class LocalResultStorage:
    """Results as files in a folder (default ``FLEETFLOW_HOME/results``)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or get_settings().resolved_results_dir())

    def write_result(self, key: str, data: bytes) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")  # 0600: results may be private data
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, self.root / key)

    def read_result(self, key: str) -> bytes:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            raise MissingResult(
                f"result file {key} is missing from {self.root}; was FLEETFLOW_RESULTS_DIR changed "
                "or the folder cleaned?"
            ) from None

    def describe(self) -> dict[str, Any]:
        return {"type": "local", "root": str(self.root)}


StorageFactory = Callable[[dict[str, Any]], ResultStorage]
_factories: dict[str, StorageFactory] = {}
# Storage types whose factory is registered by a module imported on first use.
_PROVIDERS: dict[str, str] = {"s3": "fleetflow.aws.s3"}


def register_result_storage(storage_type: str, factory: StorageFactory) -> None:
    """Read references whose storage descriptor has ``type == storage_type`` with ``factory``."""
    _factories[storage_type] = factory


def _load_block(descriptor: dict[str, Any]) -> ResultStorage:
    from .blocks import Block

    return Block.load(descriptor["block"])  # type: ignore[return-value]


register_result_storage("local", lambda d: LocalResultStorage(Path(d["root"])))
register_result_storage("block", _load_block)


def storage_for(descriptor: dict[str, Any]) -> ResultStorage:
    """The storage a reference's descriptor names."""
    kind = descriptor.get("type", "")
    if kind not in _factories and kind in _PROVIDERS:
        importlib.import_module(_PROVIDERS[kind])
    factory = _factories.get(kind)
    if factory is None:
        raise MissingResult(
            f"unknown result storage {descriptor!r}; known types: {', '.join(sorted(_factories))}. "
            "Install the extra that provides it (e.g. pip install 'fleetflow[aws]' for s3)."
        )
    return factory(descriptor)


def _inline(value: Any) -> str | None:
    value = encode_blocks(value)  # a returned saved block is stored as its reference
    if value is None or isinstance(value, (bool, int, float, str)):
        return json.dumps(value)
    if isinstance(value, (list, dict)):
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            return None
        # Only keep inline when JSON round-trips exactly (tuples, int keys would not).
        return text if len(text) <= INLINE_LIMIT and json.loads(text) == value else None
    return None


_configured: dict[str, ResultStorage] = {}


def default_result_storage() -> ResultStorage:
    """``FLEETFLOW_RESULT_STORAGE`` (a saved block, loaded once) or the local results folder."""
    ref = get_settings().result_storage
    if not ref:
        return LocalResultStorage()
    if ref not in _configured:
        from .blocks import Block

        _configured[ref] = Block.load(ref)  # type: ignore[assignment]
    return _configured[ref]


def persist_result(value: Any, storage: ResultStorage | str | None = None) -> dict[str, Any]:
    """Store ``value`` and return the reference recorded in the COMPLETED state.

    ``storage`` is a flow's/task's ``result_storage``: a block, a saved block's 'type/name',
    or None for the default.
    """
    text = _inline(value)
    if text is not None:
        return {"serializer": "json", "value": text}
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    key = hashlib.sha256(data).hexdigest()
    if isinstance(storage, str):
        from .blocks import Block

        storage = Block.load(storage)  # type: ignore[assignment]
    storage = storage or default_result_storage()
    storage.write_result(key, data)
    describe = getattr(storage, "describe", None)
    return {"serializer": "pickle", "key": key, "storage": describe() if describe else {}}


def load_result(ref: dict[str, Any] | None) -> Any:
    """Read a value back from its reference."""
    if not ref:
        raise MissingResult("this run has no persisted result")
    if ref.get("serializer") == "json":
        value = json.loads(ref["value"])
        return decode_blocks(value) if contains_reference(value) else value
    return pickle.loads(storage_for(ref.get("storage", {})).read_result(ref["key"]))


def forget_configured_storage() -> None:
    """Drop the cached ``FLEETFLOW_RESULT_STORAGE`` block (tests, settings changes)."""
    _configured.clear()


register_result_loader(load_result)
