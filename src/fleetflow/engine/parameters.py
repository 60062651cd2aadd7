"""Flow parameters checked against the function's signature and type hints (pydantic).

The same model validates a direct call, a deployment's default parameters at apply time and
the JSON parameters a runner receives, so "1" becomes 1 for an ``int`` everywhere and a bad
value is named before anything runs.
"""

from __future__ import annotations

import inspect
import typing
from functools import lru_cache
from typing import Any, Callable

import pydantic
from pydantic_core import to_jsonable_python

from ..blocks.references import contains_reference, decode_blocks, encode_blocks
from ..exceptions import ParameterValidationError
from .parameter_fields import FieldPlan, plain_plan, validate_plain

_CONFIG = pydantic.ConfigDict(arbitrary_types_allowed=True, extra="forbid")


@lru_cache(maxsize=512)
def parameter_fields(fn: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
    """``name -> (annotation, default)`` of each named parameter of ``fn`` (``...``: required)."""
    fields: dict[str, Any] = {}
    try:  # resolves string annotations (modules using `from __future__ import annotations`)
        hints = typing.get_type_hints(fn)
    except Exception:  # a hint naming something undefined: fall back to the raw annotations
        hints = {}
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any if p.annotation is p.empty else p.annotation)
        if isinstance(annotation, str):
            annotation = Any
        default = ... if p.default is p.empty else p.default
        fields[name] = (annotation, default)
    return fields


@lru_cache(maxsize=512)
def parameter_model(fn: Callable[..., Any]) -> type[pydantic.BaseModel]:
    """A pydantic model with one field per named parameter of ``fn``."""
    return pydantic.create_model(f"{fn.__name__}_parameters", __config__=_CONFIG, **parameter_fields(fn))


@lru_cache(maxsize=512)
def _plan(fn: Callable[..., Any]) -> FieldPlan | None:
    """How to validate ``fn``'s parameters without building its model, or None (the model)."""
    return plain_plan(parameter_fields(fn))


@lru_cache(maxsize=2048)
def signature_of(fn: Callable[..., Any]) -> inspect.Signature:
    """``inspect.signature`` is slow (tens of µs); task calls are a hot path."""
    return inspect.signature(fn)


@lru_cache(maxsize=2048)
def plain_names(fn: Callable[..., Any]) -> tuple[str, ...] | None:
    """The parameter names of ``fn`` when every parameter is positional-or-keyword (the
    common case, where binding and calling need no ``inspect``), else None."""
    params = signature_of(fn).parameters.values()
    if all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params):
        return tuple(p.name for p in params)
    return None


def bind_call(fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Positional + keyword arguments -> a name -> value dict (errors name the problem)."""
    if not kwargs:
        names = plain_names(fn)
        if names is not None and len(names) == len(args):  # what Signature.bind gives, quicker
            return dict(zip(names, args))
    try:
        bound = signature_of(fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise ParameterValidationError(f"{fn.__name__}(): {exc}") from None
    return dict(bound.arguments)


def validate_parameters(fn: Callable[..., Any], parameters: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Coerce and check ``parameters``; raise ParameterValidationError naming each bad one.

    ``partial=True`` (deployment defaults) allows required parameters to be missing: they
    can still be given per run.
    """
    if contains_reference(parameters):  # block references from the store load as blocks
        parameters = decode_blocks(parameters)
    sig = signature_of(fn)
    var_kw = next((n for n, p in sig.parameters.items() if p.kind is p.VAR_KEYWORD), None)
    var_pos = next((n for n, p in sig.parameters.items() if p.kind is p.VAR_POSITIONAL), None)
    named = {k: v for k, v in parameters.items() if k in sig.parameters and k not in (var_kw, var_pos)}
    extra = {k: v for k, v in parameters.items() if k not in named and k not in (var_kw, var_pos)}
    if var_kw and var_kw in parameters:
        extra.update(parameters[var_kw])
    if extra and not var_kw:
        unknown = ", ".join(sorted(extra))
        valid = ", ".join(n for n in sig.parameters) or "none"
        raise ParameterValidationError(
            f"{fn.__name__} got unknown parameter(s): {unknown}; valid parameters: {valid}", field=sorted(extra)[0]
        )
    result, errors = _validate_named(fn, named)
    if errors is not None:
        errors = [e for e in errors if not (partial and e["type"] == "missing")]
        if errors:
            raise _parameter_error(fn, errors) from None
        return {k: v for k, v in parameters.items()}
    if var_pos and var_pos in parameters:
        result[var_pos] = tuple(parameters[var_pos])
    if var_kw:
        result.update(extra)
    return result


def _validate_named(fn: Callable[..., Any], named: dict[str, Any]) -> tuple[dict[str, Any], list[Any] | None]:
    """The validated values of the named parameters, or the errors (as pydantic lists them).

    A forked run imports its flow afresh, so anything cached per function is built again in
    every run: building the model is ~2 ms of a sub-flow's CPU. Parameters annotated with plain
    types are validated by one adapter per annotation instead (cached by the annotation, which
    is the same object in every import, and warmed in the fork server's template), with the
    model's outcome; any other function keeps its model."""
    plan = _plan(fn)
    if plan is not None:
        return validate_plain(plan, named)
    try:
        validated = parameter_model(fn).model_validate(named)
    except pydantic.ValidationError as exc:
        return {}, exc.errors()
    return {name: getattr(validated, name) for name in type(validated).model_fields}, None


def _parameter_error(fn: Callable[..., Any], errors: list[Any]) -> ParameterValidationError:
    problems = []
    for err in errors:
        name = ".".join(str(p) for p in err["loc"])
        if err["type"] == "missing":
            problems.append(f"parameter {name!r} is required")
        else:
            problems.append(f"parameter {name!r}: {err['msg']} (got {err.get('input')!r})")
    first = str(errors[0]["loc"][0]) if errors and errors[0]["loc"] else None
    return ParameterValidationError(f"invalid parameters for {fn.__name__}: " + "; ".join(problems), field=first)


def call_with_parameters(fn: Callable[..., Any], parameters: dict[str, Any]) -> Any:
    """Call ``fn`` with ``parameters``: what :func:`bind_call` made of a call (``*args`` as a
    tuple and ``**kwargs`` as a dict under their own names) or what
    :func:`validate_parameters` made of stored ones (``**kwargs`` spread as extra names)."""
    names = plain_names(fn)
    if names is not None and len(parameters) == len(names) and all(n in parameters for n in names):
        return fn(**parameters)  # hot path: exactly the named parameters
    sig = signature_of(fn)
    # With values for *args, every parameter before it must go positionally too.
    starred = any(p.kind is p.VAR_POSITIONAL and parameters.get(n) for n, p in sig.parameters.items())
    args, kwargs = [], {}
    for name, p in sig.parameters.items():
        if p.kind is p.VAR_POSITIONAL:
            args.extend(parameters.get(name, ()))
            starred = False
        elif p.kind is p.VAR_KEYWORD:
            nested = parameters.get(name)
            if isinstance(nested, dict):
                kwargs.update(nested)
            kwargs.update({k: v for k, v in parameters.items() if k not in sig.parameters})
        elif p.kind is p.POSITIONAL_ONLY or (starred and p.kind is p.POSITIONAL_OR_KEYWORD):
            if name in parameters:
                args.append(parameters[name])
            elif p.default is not p.empty:
                args.append(p.default)
        elif name in parameters:
            kwargs[name] = parameters[name]
    return fn(*args, **kwargs)


def parameters_for_storage(parameters: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy for the run record (saved blocks as references, other objects that are
    not JSON as their repr)."""
    return to_jsonable_python(encode_blocks(parameters), fallback=repr)


def parameter_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """JSON schema of the parameters, stored on deployments and shown by the CLI."""
    try:
        return parameter_model(fn).model_json_schema()
    except Exception:  # arbitrary types have no schema; the deployment still works
        return {}
