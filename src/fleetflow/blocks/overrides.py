"""Merging ``infra_overrides`` into a block: dot paths in, a fully re-validated block out.

A deployment says ``{"cpu": 2048, "env.MODEL": "large"}``; the worker merges that into the
pool's infrastructure block. Prefect silently ignored keys it did not know, so a typo such as
``"memroy"`` launched with the default size. Here an unknown key is an error that suggests
the close matches, and the merged block goes through every validator again (the Fargate
size table, patch checks...), so a bad combination fails before any launch.

Generic over pydantic models: used for ``ECSTask``, ``Process`` and any future block.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any, Mapping

import pydantic

from ..exceptions import ConfigurationError, FleetflowError, InvalidOverrideError


def apply_overrides(model: pydantic.BaseModel, overrides: Mapping[str, Any] | None) -> pydantic.BaseModel:
    """A new model of the same type with ``overrides`` applied; ``model`` is left unchanged.

    Keys are field names or dot paths: ``"cpu"`` replaces a field, ``"env.FOO"`` sets one key
    of a dict field (the rest of the key after the field, dots included, is the dict key),
    ``"aws_credentials.region_name"`` descends into a nested model. A ``None`` value sets the
    field / key to None (``"env.FOO": None`` unsets FOO in ECSTask's ``env``).
    """
    if not overrides:
        return model
    data = _field_values(model)
    for path, value in overrides.items():
        _set_path(model, data, str(path), value, prefix="")
    return _revalidate(model, data, overrides)


def _field_values(model: pydantic.BaseModel) -> dict[str, Any]:
    """Current field values, nested models kept as instances (their secrets stay intact)."""
    return {name: getattr(model, name) for name in type(model).model_fields}


def _unknown_field(model: pydantic.BaseModel, name: str, full_path: str) -> InvalidOverrideError:
    fields = list(type(model).model_fields)
    close = difflib.get_close_matches(name, fields, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return InvalidOverrideError(
        f"unknown override {full_path!r}: {type(model).__name__} has no field {name!r}; {hint}"
        f"valid fields: {', '.join(fields)}",
        field=full_path,
    )


def _set_path(model: pydantic.BaseModel, data: dict[str, Any], path: str, value: Any, prefix: str) -> None:
    name, _, rest = path.partition(".")
    full = f"{prefix}{name}"
    if name not in type(model).model_fields:
        raise _unknown_field(model, name, f"{prefix}{path}")
    if not rest:
        data[name] = value
        return
    current = data[name]
    if current is None:
        current = _empty_container(type(model).model_fields[name].annotation)
    if isinstance(current, pydantic.BaseModel):
        data[name] = _nested(current, rest, value, full)
    elif isinstance(current, Mapping):
        data[name] = {**current, rest: value}
    else:
        raise InvalidOverrideError(
            f"override {prefix + path!r}: {full!r} holds a single value, not a mapping or nested block; "
            f"override it whole with the key {full!r}",
            field=full,
        )


def _empty_container(annotation: Any) -> Any:
    """For a dot path into a field that is None: a default nested model or an empty dict,
    when the field's type allows one (``AwsCredentials | None``, ``dict | None``)."""
    for option in typing.get_args(annotation) or (annotation,):
        origin = typing.get_origin(option) or option
        if isinstance(origin, type) and issubclass(origin, pydantic.BaseModel):
            try:
                return origin()
            except (pydantic.ValidationError, FleetflowError):
                return {}
        if isinstance(origin, type) and issubclass(origin, Mapping):
            return {}
    return None


def _nested(current: pydantic.BaseModel, rest: str, value: Any, full: str) -> pydantic.BaseModel:
    data = _field_values(current)
    _set_path(current, data, rest, value, prefix=f"{full}.")
    return _revalidate(current, data, {f"{full}.{rest}": value}, prefix=f"{full}.")


def _revalidate(
    model: pydantic.BaseModel, data: dict[str, Any], overrides: Mapping[str, Any], prefix: str = ""
) -> pydantic.BaseModel:
    """Build the merged model through every validator; name the override that broke it."""
    try:
        return _validate_fields(type(model), data)
    except pydantic.ValidationError as exc:
        raise InvalidOverrideError(
            _describe_validation_error(model, exc, overrides, prefix), field=_first_loc(exc, prefix)
        ) from exc
    except ConfigurationError as exc:
        keys = ", ".join(repr(k) for k in overrides)
        raise InvalidOverrideError(
            f"overrides {keys} make this {type(model).__name__} invalid: {exc}",
            field=f"{prefix}{exc.field}" if exc.field and not exc.field.startswith(prefix) else exc.field,
        ) from exc


_SECRET_HINTS = ("secret", "password", "token", "key")


def _shown(loc: str, value: Any) -> str:
    """The rejected value for the message, unless the field name suggests it is a secret."""
    return "********" if any(h in loc.lower() for h in _SECRET_HINTS) else repr(value)


def _validate_fields(cls: type[pydantic.BaseModel], data: dict[str, Any]) -> pydantic.BaseModel:
    """Validate into a fresh instance without the class's ``__init__``, which (for blocks)
    flattens pydantic's structured errors into one message; we want each error's field."""
    instance = cls.__new__(cls)
    cls.__pydantic_validator__.validate_python(data, self_instance=instance)
    return instance


def _loc(err: Any, prefix: str) -> str:
    return prefix + ".".join(str(p) for p in err["loc"]) if err["loc"] else prefix.rstrip(".") or "(model)"


def _first_loc(exc: pydantic.ValidationError, prefix: str = "") -> str | None:
    errors = exc.errors()
    return _loc(errors[0], prefix) if errors else None


def _describe_validation_error(
    model: pydantic.BaseModel, exc: pydantic.ValidationError, overrides: Mapping[str, Any], prefix: str = ""
) -> str:
    problems = []
    for err in exc.errors():
        loc = _loc(err, prefix)
        given = f" (override {loc!r} = {_shown(loc, err.get('input'))})" if loc in overrides else ""
        problems.append(f"{loc}: {err['msg']}{given}")
    return f"invalid override for {type(model).__name__}: " + "; ".join(problems)
