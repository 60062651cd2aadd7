"""Parameters of a deployment run, checked against the deployment's stored schema *before*
the run is created (a wrong type used to create, launch and then FAIL a run; a value the
store cannot serialise leaked a raw ``sqlalchemy.exc.StatementError``).

The check follows what the runner's pydantic validation accepts (lax mode: ``"5"`` is a
valid integer, ``5`` is not a valid string), so nothing the runner would accept is refused
here. Schema parts it does not understand (``$ref`` to models, formats) are left to the runner.
"""

from __future__ import annotations

from typing import Any, Callable

from ..exceptions import ParameterValidationError

_TRUE_FALSE = {"true", "false", "yes", "no", "on", "off", "1", "0", "t", "f", "y", "n"}


def _is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    if isinstance(v, float):
        return v.is_integer()
    if isinstance(v, str):
        try:
            int(v.strip())
            return True
        except ValueError:
            return False
    return False


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    if isinstance(v, str):
        try:
            float(v.strip())
            return True
        except ValueError:
            return False
    return False


_TYPES: dict[str, Callable[[Any], bool]] = {
    "integer": _is_int,
    "number": _is_number,
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool) or (isinstance(v, int) and v in (0, 1))
    or (isinstance(v, str) and v.strip().lower() in _TRUE_FALSE),
    "array": lambda v: isinstance(v, (list, tuple, set, frozenset)),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def matches(schema: dict[str, Any], value: Any) -> bool:
    """Does ``value`` fit ``schema``? Unknown constructs count as a match (pure)."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return True
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return any(matches(s, value) for s in schema[key])
    if "allOf" in schema:
        return all(matches(s, value) for s in schema["allOf"])
    if "enum" in schema:
        return value in schema["enum"]
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if kinds and not any(_TYPES.get(k, lambda v: True)(value) for k in kinds):
        return False
    if "items" in schema and isinstance(value, (list, tuple)):
        return all(matches(schema["items"], item) for item in value)
    return True


def describe(schema: dict[str, Any]) -> str:
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(describe(s) for s in schema.get("anyOf") or schema.get("oneOf"))
    if "enum" in schema:
        return f"one of {schema['enum']}"
    kind = schema.get("type", "any value")
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {describe(schema['items'])}"
    return str(kind)


def check_types(full_name: str, schema: dict[str, Any], parameters: dict[str, Any]) -> None:
    """Raise ParameterValidationError naming the first parameter whose value does not fit."""
    props = (schema or {}).get("properties") or {}
    for name, value in parameters.items():
        spec = props.get(name)
        if spec is not None and not matches(spec, value):
            raise ParameterValidationError(
                f"{full_name}: parameter {name!r} must be {describe(spec)}, got {type(value).__name__} {value!r}; "
                "no run was created",
                field=name,
            )


def check_serialisable(full_name: str, parameters: dict[str, Any], dumps: Callable[[Any], str]) -> None:
    """Each value must be storable as JSON: say which one is not, before anything is written."""
    for name, value in parameters.items():
        try:
            dumps(value)
        except (TypeError, ValueError) as exc:
            raise ParameterValidationError(
                f"{full_name}: parameter {name!r} cannot be stored ({exc}); pass plain data "
                "(numbers, strings, lists, dicts), or a saved block / a path to the value; no run was created",
                field=name,
            ) from None
