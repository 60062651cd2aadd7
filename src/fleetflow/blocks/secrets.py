"""Secret fields: encrypted at rest, masked everywhere else.

The key comes from ``FLEETFLOW_ENCRYPTION_KEY`` or is generated once at
``FLEETFLOW_HOME/encryption.key`` with 0600 permissions. A team sharing one PostgreSQL store
shares the key through the setting, never through the database.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import pydantic
from cryptography.fernet import Fernet, InvalidToken

from ..exceptions import BlockError
from ..settings import get_settings

MASK = "********"
SECRET_MARKER = "$fleetflow-secret"
JSON_MARKER = "$fleetflow-json"  # next to SECRET_MARKER: the plaintext is JSON (SecretDict)


class SecretStr(pydantic.SecretStr):
    """A pydantic ``SecretStr`` that prints as ``********``."""

    def _display(self) -> str:
        return MASK


def _key_file() -> Path:
    return get_settings().resolved_home() / "encryption.key"


def _load_or_create_key() -> bytes:
    configured = get_settings().encryption_key
    if configured is not None:
        return configured.get_secret_value().encode()
    path = _key_file()
    if not path.exists():
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
    return Fernet(_load_or_create_key())


def fernet() -> Fernet:
    s = get_settings()
    return _fernet(str(s.home), s.encryption_key.get_secret_value() if s.encryption_key else None)


def encrypt(value: str) -> dict[str, str]:
    return {SECRET_MARKER: fernet().encrypt(value.encode()).decode()}


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise BlockError(
            "cannot decrypt a secret block field: the encryption key differs from the one it was saved with. "
            "Set FLEETFLOW_ENCRYPTION_KEY to the key used when the block was saved."
        ) from exc


def encrypt_secrets(value: Any) -> Any:
    """Walk a ``model_dump(mode='python')`` tree, replacing secrets by encrypted markers."""
    if isinstance(value, pydantic.SecretStr):
        return encrypt(value.get_secret_value())
    if isinstance(value, pydantic.Secret):  # SecretDict and other structured secrets
        import json

        return {**encrypt(json.dumps(value.get_secret_value())), JSON_MARKER: True}
    if isinstance(value, dict):
        return {k: encrypt_secrets(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encrypt_secrets(v) for v in value]
    return value


def decrypt_secrets(value: Any) -> Any:
    """Inverse of :func:`encrypt_secrets` on stored JSON."""
    if isinstance(value, dict):
        if set(value) == {SECRET_MARKER}:
            return decrypt(value[SECRET_MARKER])
        if set(value) == {SECRET_MARKER, JSON_MARKER}:
            import json

            return json.loads(decrypt(value[SECRET_MARKER]))
        return {k: decrypt_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decrypt_secrets(v) for v in value]
    return value


def mask_secrets(value: Any) -> Any:
    """Replace secrets in a python dump by ``********`` (for previews, CLI and logs)."""
    if isinstance(value, (pydantic.SecretStr, pydantic.Secret)):
        return MASK
    if isinstance(value, dict):
        return {k: mask_secrets(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v) for v in value]
    return value
