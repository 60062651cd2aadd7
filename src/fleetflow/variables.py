"""Prefect-compatible ``prefect.variables``: named string values shared by flows.

    from fleetflow import variables
    variables.get("region", default="eu-west-1")      # the value (a str) or the default
    Variable.set("region", "us-east-1", overwrite=True)
    Variable.get("region").value

Values are strings (at most 5000 characters, as in Prefect). ``fleetflow variable
set|get|ls|delete`` manages them from the shell.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from pydantic import BaseModel, Field

from .exceptions import ConfigurationError

MAX_VALUE_LENGTH = 5000
_NAME_RE = re.compile(r"^[a-z0-9_]+$")


def _client() -> Any:
    from .client import get_client
    from .engine.context import flow_run_ctx

    ctx = flow_run_ctx.get()
    return ctx.client if ctx is not None else get_client()


def check_variable(name: str, value: Any) -> str:
    """The value as stored; refuses bad names and oversized values before any write."""
    if not _NAME_RE.match(name or ""):
        raise ConfigurationError(
            f"variable name {name!r} must contain only lowercase letters, numbers and underscores", field="name")
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_VALUE_LENGTH:
        raise ConfigurationError(f"variable {name!r} is {len(text)} characters; the limit is {MAX_VALUE_LENGTH}", field="value")
    return text


class Variable(BaseModel):
    """A stored variable: ``Variable.get(name)`` / ``Variable.set(name, value)``."""

    name: str = Field(description="Lowercase letters, numbers and underscores.")
    value: str = Field(description="The value (a string).")
    tags: list[str] = Field(default_factory=list, description="Free-form labels.")

    @classmethod
    def get(cls, name: str, default: Any = None) -> "Variable | Any":
        """The variable, or ``default`` when it does not exist."""
        record = _client().read_variable(name)
        return cls(name=record.name, value=record.value, tags=record.tags) if record else default

    @classmethod
    def set(cls, name: str, value: Any, tags: Sequence[str] = (), overwrite: bool = False) -> "Variable":
        """Create (or with ``overwrite=True`` replace) a variable."""
        text = check_variable(name, value)
        record = _client().set_variable(name, text, tags=list(tags), overwrite=overwrite)
        return cls(name=record.name, value=record.value, tags=record.tags)


def get(name: str, default: Any = None) -> Any:
    """The value of variable ``name`` (a str), or ``default``."""
    record = _client().read_variable(name)
    return record.value if record else default


__all__ = ["Variable", "get"]
