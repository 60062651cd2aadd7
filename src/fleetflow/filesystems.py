"""Storage blocks: where deployment code bundles (and optionally results) live.

``LocalFileSystem`` is the embedded default. ``S3`` (Prefect-compatible import path) is
defined in :mod:`fleetflow.aws.s3` and re-exported here when the ``aws`` extra is installed.
Every storage block implements the bundle store interface (``exists`` / ``put_bytes`` /
``get_bytes``) and the result storage interface (``write_result`` / ``read_result``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from .blocks import Block
from .bundles import DirectoryBundleStore


class LocalFileSystem(Block):
    """Code bundles and results in a local (or shared, mounted) folder."""

    _block_type_slug = "local-file-system"
    _description = "A folder on this machine or a shared mount."

    basepath: str = Field(default="~/.fleetflow/storage", description="Folder that holds the bundles.")

    def _store(self) -> DirectoryBundleStore:
        root = Path(self.basepath).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        return DirectoryBundleStore(root)

    # bundle store interface
    def exists(self, key: str) -> bool:
        return self._store().exists(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._store().put_bytes(key, data)

    def get_bytes(self, key: str) -> bytes:
        return self._store().get_bytes(key)

    # result storage interface
    def write_result(self, key: str, data: bytes) -> None:
        self.put_bytes(f"results/{key}", data)

    def read_result(self, key: str) -> bytes:
        return self.get_bytes(f"results/{key}")

    def describe(self) -> dict[str, Any]:
        return {"type": "local", "root": str(Path(self.basepath).expanduser() / "results")}

    def location(self) -> str:
        return str(Path(self.basepath).expanduser())

    # Prefect's filesystem interface
    def _inside(self, path: str) -> Path:
        """``path`` inside basepath; refuses paths that escape it (``../``)."""
        root = Path(self.basepath).expanduser().resolve()
        target = (root / path).resolve()
        if target != root and root not in target.parents:
            from .exceptions import ConfigurationError

            raise ConfigurationError(f"path {path!r} is outside the block's basepath {str(root)!r}", field="path")
        return target

    def write_path(self, path: str, content: bytes) -> str:
        """Write bytes to ``basepath/path`` (folders created); returns the full path."""
        target = self._inside(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        return str(target)

    def read_path(self, path: str) -> bytes:
        """The bytes at ``basepath/path``."""
        target = self._inside(path)
        if not target.is_file():
            from .exceptions import ObjectNotFound

            raise ObjectNotFound(f"no file {path!r} under {self.basepath!r}", kind="file", name=path)
        return target.read_bytes()


def __getattr__(name: str) -> Any:
    # `from fleetflow.filesystems import S3` like `from prefect.filesystems import S3`.
    if name in ("S3", "S3Bucket"):
        from .aws import s3

        return getattr(s3, name)
    raise AttributeError(name)
