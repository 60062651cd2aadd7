"""Prefect-compatible ``prefect.blocks.system``: ``Secret``, ``JSON``, ``String``, ``DateTime``.

Each holds one ``value``; ``Secret``'s is encrypted at rest and masked in every rendering,
like every other secret field. ``Secret.load("token").get()`` returns the plain string.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from .base import Block
from .secrets import SecretStr


class Secret(Block):
    """A secret string (API token, password)."""

    _block_type_slug = "secret"
    _description = "A secret value, encrypted at rest and never printed."

    value: SecretStr = Field(description="The secret (shown as ********).")

    def get(self) -> str:
        return self.value.get_secret_value()


class JSON(Block):
    """Any JSON-compatible value."""

    _block_type_slug = "json"
    _description = "A JSON value."

    value: Any = Field(description="A JSON-compatible value.")


class String(Block):
    """A string."""

    _block_type_slug = "string"
    _description = "A string value."

    value: str = Field(description="The string.")


class DateTime(Block):
    """A date and time."""

    _block_type_slug = "date-time"
    _description = "A date and time."

    value: dt.datetime = Field(description="An ISO 8601 date and time.")


__all__ = ["Secret", "JSON", "String", "DateTime"]
