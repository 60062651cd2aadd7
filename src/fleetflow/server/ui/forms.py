"""The Custom run form: fields generated from a deployment's parameter JSON schema, and the
posted text turned back into parameters and infrastructure overrides.

Pure. The *checks* are not here: the parsed values go to the store's
``create_flow_run_from_deployment``, whose validators (parameter types, Fargate sizes, override
keys) refuse bad input before any run exists; their ``field`` puts the message next to the
right input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from ...orchestrator.schemas import Deployment

OVERRIDE_FIELDS = ("cpu", "memory")
PARAM_PREFIX, OVERRIDE_PREFIX = "p.", "o."


@dataclass
class Field:
    """One input of the form."""

    name: str
    kind: str  # 'text' | 'number' | 'bool' | 'json'
    label: str
    value: str
    required: bool = False
    help: str = ""
    error: str = ""

    @property
    def input_name(self) -> str:
        return PARAM_PREFIX + self.name


def _types(spec: Mapping[str, Any]) -> list[str]:
    kind = spec.get("type")
    if isinstance(kind, list):
        return [k for k in kind if k != "null"]
    if kind:
        return [kind]
    options = spec.get("anyOf") or spec.get("oneOf") or []
    return [o.get("type") for o in options if isinstance(o, dict) and o.get("type") not in (None, "null")]


def _kind(spec: Mapping[str, Any]) -> str:
    types = _types(spec)
    if types == ["string"]:
        return "text"
    if types and set(types) <= {"integer", "number"}:
        return "number"
    if types == ["boolean"]:
        return "bool"
    return "json"


def _shown(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "bool":
        return "true" if value else "false"
    return json.dumps(value)


def parameter_fields(deployment: Deployment, posted: Mapping[str, str] | None = None) -> list[Field]:
    """The schema's properties in order, prefilled with the posted text or the defaults."""
    schema = deployment.parameter_schema or {}
    required = set(schema.get("required", []))
    fields = []
    for name, spec in (schema.get("properties") or {}).items():
        kind = _kind(spec)
        default = deployment.parameters.get(name, spec.get("default"))
        value = posted.get(PARAM_PREFIX + name, "") if posted is not None else _shown(default, kind)
        types = " | ".join(_types(spec)) or "any"
        fields.append(Field(name, kind, spec.get("title") or name, value, name in required and name not in deployment.parameters,
                            help=spec.get("description") or types))  # fmt: skip
    return fields


def override_fields(deployment: Deployment, posted: Mapping[str, str] | None = None) -> list[Field]:
    current = deployment.infra_overrides or {}
    out = []
    for name in OVERRIDE_FIELDS:
        value = posted.get(OVERRIDE_PREFIX + name, "") if posted is not None else ""
        hint = f"deployment: {current[name]}" if name in current else "from the infrastructure block"
        out.append(Field(name, "number", name, value, help=("CPU units (1024 = 1 vCPU); " if name == "cpu" else "MiB; ") + hint))
    return out


def parse_parameters(fields: list[Field]) -> dict[str, Any]:
    """Filled inputs as parameter values: text as typed, the rest as JSON when it parses
    (else the raw text, which the store's type check then refuses with the field's name)."""
    values: dict[str, Any] = {}
    for f in fields:
        raw = f.value.strip() if f.kind != "text" else f.value
        if raw == "":
            continue
        if f.kind == "text":
            values[f.name] = raw
            continue
        try:
            values[f.name] = json.loads(raw)
        except ValueError:
            values[f.name] = raw
    return values


def parse_overrides(fields: list[Field]) -> dict[str, Any]:
    """cpu/memory as integers; a non-integer is marked on its field (nothing is sent)."""
    overrides: dict[str, Any] = {}
    for f in fields:
        raw = f.value.strip()
        if not raw:
            continue
        try:
            overrides[f.name] = int(raw)
        except ValueError:
            f.error = f"{f.name} must be a whole number, got {raw!r}"
    return overrides


def place_error(field: str | None, params: list[Field], overrides: list[Field], message: str) -> bool:
    """Put ``message`` next to the input ``field`` names; False when no input matches."""
    name = (field or "").split(".")[0]
    for f in [*params, *overrides]:
        if f.name == name or (f in overrides and name.endswith(f.name)):
            f.error = message
            return True
    return False
