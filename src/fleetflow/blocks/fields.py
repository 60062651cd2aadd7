"""Prefect-compatible ``prefect.blocks.fields``: ``SecretDict``, a dict whose whole content
is secret (encrypted at rest, shown as ``********``; read it with ``get_secret_value()``)."""

from __future__ import annotations

from typing import Any

import pydantic

from .secrets import MASK, SecretStr


class SecretDict(pydantic.Secret[dict[str, Any]]):
    """A secret mapping, e.g. extra HTTP headers holding tokens."""

    def _display(self) -> str:
        return MASK


__all__ = ["SecretDict", "SecretStr"]
