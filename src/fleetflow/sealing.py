"""Sealing secret values for storage: the Fernet key and the document trees it applies to.

Whoever holds the encryption key seals: the embedded client on the user's machine, or the
fleetflow server (so ``FLEETFLOW_ENCRYPTION_KEY`` never has to reach a container). The key
comes from ``FLEETFLOW_ENCRYPTION_KEY`` or is generated once at ``FLEETFLOW_HOME/encryption.key``
with 0600 permissions.

A block document's secret values take three forms:

* sealed (at rest): ``{"$fleetflow-secret": "<Fernet token>"}``;
* open (between a block and its client): ``{"$fleetflow-secret-value": "<plain text>"}``;
* masked (for readers not allowed secrets): ``{"$fleetflow-secret-value": "********"}``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a secret is sealed or opened, not on every flow's start-up path
    from cryptography.fernet import Fernet

from .exceptions import BlockError
from .settings import get_settings

MASK = "********"
SECRET_MARKER = "$fleetflow-secret"
OPEN_MARKER = "$fleetflow-secret-value"
JSON_MARKER = "$fleetflow-json"  # next to either marker: the plain text is JSON (SecretDict)


def _key_file() -> Path:
    return get_settings().resolved_home() / "encryption.key"


def _load_or_create_key() -> bytes:
    configured = get_settings().encryption_key
    if configured is not None:
        return configured.get_secret_value().encode()
    path = _key_file()
    if not path.exists():
        from cryptography.fernet import Fernet

        key = Fernet.generate_key()
        # O_EXCL: when two processes race, exactly one creates the key and the other reads it.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key
    return path.read_bytes().strip()


@lru_cache(maxsize=8)
def _fernet(home: str, configured: str | None) -> Fernet:
    from cryptography.fernet import Fernet

    return Fernet(_load_or_create_key())


def fernet() -> Fernet:
    s = get_settings()
    return _fernet(str(s.home), s.encryption_key.get_secret_value() if s.encryption_key else None)


def encrypt(value: str) -> dict[str, str]:
    return {SECRET_MARKER: fernet().encrypt(value.encode()).decode()}


def decrypt(token: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise BlockError(
            "cannot decrypt a secret block field: the encryption key differs from the one it was saved with. "
            "Set FLEETFLOW_ENCRYPTION_KEY to the key used when the block was saved."
        ) from exc


def _walk(value: Any, leaf: Any) -> Any:
    """Rebuild a JSON tree, replacing each marker dict by ``leaf(marker, value)`` (the JSON
    flag, when present, is carried over unchanged)."""
    if isinstance(value, dict):
        keys = set(value) - {JSON_MARKER}
        if len(keys) == 1 and len(value) - len(keys) <= 1 and (key := next(iter(keys))) in (SECRET_MARKER, OPEN_MARKER):
            replaced = leaf(key, value[key])
            return {**replaced, JSON_MARKER: True} if JSON_MARKER in value else replaced
        return {k: _walk(v, leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, leaf) for v in value]
    return value


def seal(data: Any) -> Any:
    """Open markers -> sealed markers (already-sealed ones are kept)."""
    return _walk(data, lambda key, v: encrypt(v) if key == OPEN_MARKER else {key: v})


def unseal(data: Any) -> Any:
    """Sealed markers -> open markers."""
    return _walk(data, lambda key, v: {OPEN_MARKER: decrypt(v)} if key == SECRET_MARKER else {key: v})


def mask(data: Any) -> Any:
    """Every secret (sealed or open) -> a masked open marker."""
    return _walk(data, lambda key, v: {OPEN_MARKER: MASK})


def has_secrets(data: Any) -> bool:
    found: list[bool] = []
    _walk(data, lambda key, v: found.append(True))
    return bool(found)


# ---- a deployment's inline infrastructure block: the same three forms as a block document ---
def _with_infrastructure(deployment: Any, change: Any) -> Any:
    """``deployment`` (a :class:`~fleetflow.orchestrator.schemas.Deployment`) with ``change``
    applied to the data of its inline infrastructure block, if it has one."""
    infra = deployment.infrastructure
    if not infra or not isinstance(infra.get("data"), dict):
        return deployment
    return deployment.model_copy(update={"infrastructure": {**infra, "data": change(infra["data"])}})


def seal_deployment(deployment: Any) -> Any:
    """Before storing: the inline infrastructure's open secrets sealed with this side's key."""
    return _with_infrastructure(deployment, seal)


def open_deployment(deployment: Any) -> Any:
    """For a reader allowed secrets (a worker launching it): sealed secrets opened."""
    return _with_infrastructure(deployment, unseal)


def mask_deployment(deployment: Any) -> Any:
    """For everyone else, and for lists: every secret ``********``."""
    return _with_infrastructure(deployment, mask)
