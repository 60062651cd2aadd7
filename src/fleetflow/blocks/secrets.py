"""Secret fields: encrypted at rest, masked everywhere else.

A block hands its client *open* secrets (:func:`open_secrets`); the client seals them with
the key it holds (the embedded client locally, the server on its side, see
:mod:`fleetflow.sealing`). Loading accepts open and sealed markers alike.
"""

from __future__ import annotations

from typing import Any

import pydantic

from ..sealing import JSON_MARKER, MASK, OPEN_MARKER, SECRET_MARKER, decrypt, encrypt, fernet  # noqa: F401 - re-exported


class SecretStr(pydantic.SecretStr):
    """A pydantic ``SecretStr`` that prints as ``********``."""

    def _display(self) -> str:
        return MASK


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


def open_secrets(value: Any) -> Any:
    """Like :func:`encrypt_secrets`, but secrets become open markers for the client to seal."""
    if isinstance(value, pydantic.SecretStr):
        return {OPEN_MARKER: value.get_secret_value()}
    if isinstance(value, pydantic.Secret):  # structured: JSON text, flagged
        import json

        return {OPEN_MARKER: json.dumps(value.get_secret_value()), JSON_MARKER: True}
    if isinstance(value, dict):
        return {k: open_secrets(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [open_secrets(v) for v in value]
    return value


def decrypt_secrets(value: Any) -> Any:
    """Inverse of :func:`encrypt_secrets` / :func:`open_secrets` on stored or received JSON."""
    if isinstance(value, dict):
        if set(value) == {SECRET_MARKER}:
            return decrypt(value[SECRET_MARKER])
        if set(value) == {OPEN_MARKER}:
            return value[OPEN_MARKER]
        if set(value) in ({SECRET_MARKER, JSON_MARKER}, {OPEN_MARKER, JSON_MARKER}):
            import json

            text = decrypt(value[SECRET_MARKER]) if SECRET_MARKER in value else value[OPEN_MARKER]
            return json.loads(text) if text != MASK else MASK
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
