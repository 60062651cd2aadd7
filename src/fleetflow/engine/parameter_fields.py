"""Validating flow parameters one field at a time, for parameters annotated with plain types.

Why: a forked or launched run imports its flow's module afresh, so the flow function -- and
anything cached per function, such as its pydantic parameter model -- is new in every run, and
building that model is ~2 ms of CPU (schema generation, a validator, a class). The annotations
of most flows are plain types (``int``, ``str``, ``list[str]``, ``dict[str, Any] | None``):
the very same objects in every import. So a :class:`~pydantic.TypeAdapter` per annotation,
cached by the annotation and warmed in the fork server's template (:func:`warm`), validates
such parameters with no model at all, giving what the model gives: the same coercions (same
core schema per field, lax mode), the same errors (located under the parameter's name),
defaults returned unvalidated, unhashable defaults deep-copied (as pydantic-core does).

Anything else -- a user class, an ``Annotated`` constraint, a ``Field(...)`` default, a name
pydantic treats specially -- keeps the model (:func:`plain_plan` returns None for it).
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import pathlib
import types
import typing
import uuid
from functools import lru_cache
from typing import Any, Mapping

import pydantic
from pydantic.fields import FieldInfo

REQUIRED = ...
_CONFIG = pydantic.ConfigDict(arbitrary_types_allowed=True)
_LEAF_TYPES = frozenset({
    int, float, str, bool, bytes, complex, dict, list, tuple, set, frozenset, type(None),
    dt.datetime, dt.date, dt.time, dt.timedelta, decimal.Decimal, uuid.UUID, pathlib.Path,
})  # fmt: skip
_ORIGINS = frozenset({typing.Union, types.UnionType, typing.Literal, list, dict, tuple, set, frozenset})
_LITERAL_VALUES = (str, int, bool, bytes, type(None))

# (name, adapter, default or REQUIRED, whether the default is copied per call)
FieldPlan = tuple[tuple[str, pydantic.TypeAdapter, Any, bool], ...]


def plain_annotation(annotation: Any) -> bool:
    """Whether ``annotation`` is built from plain types only (pure): ``Any``, builtin and a few
    standard-library value types, ``None``, and unions, literals and containers of them."""
    if annotation is Any or annotation is None or annotation in _LEAF_TYPES:
        return True
    origin = typing.get_origin(annotation)
    if origin not in _ORIGINS:
        return False
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return all(type(a) in _LITERAL_VALUES for a in args)
    return all(a is Ellipsis or plain_annotation(a) for a in args)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def plain_name(name: str) -> bool:
    """Whether pydantic's model would take ``name`` as an ordinary field (pure): no private
    (underscore) names, none in its protected ``model_`` namespace."""
    return not name.startswith(("_", "model_"))


def plain_plan(fields: Mapping[str, tuple[Any, Any]]) -> FieldPlan | None:
    """The per-field plan for ``name -> (annotation, default)``, or None when any field needs
    the model (see the module docstring)."""
    plan = []
    for name, (annotation, default) in fields.items():
        if not plain_name(name) or not _hashable(annotation) or not plain_annotation(annotation):
            return None
        if isinstance(default, FieldInfo):
            return None
        plan.append((name, adapter(annotation), default, default is not REQUIRED and not _hashable(default)))
    return tuple(plan)


@lru_cache(maxsize=1024)
def adapter(annotation: Any) -> pydantic.TypeAdapter:
    """The validator of one plain annotation (cached: the same object in every import)."""
    return pydantic.TypeAdapter(annotation, config=_CONFIG)


def validate_plain(plan: FieldPlan, named: Mapping[str, Any]) -> tuple[dict[str, Any], list[Any] | None]:
    """The values of ``named`` validated field by field, or the errors as the model lists them."""
    result: dict[str, Any] = {}
    errors: list[Any] = []
    for name, validator, default, copied in plan:
        if name in named:
            try:
                result[name] = validator.validate_python(named[name])
            except pydantic.ValidationError as exc:
                errors += [{**e, "loc": (name, *e["loc"])} for e in exc.errors()]
        elif default is REQUIRED:
            errors.append({"type": "missing", "loc": (name,), "msg": "Field required", "input": dict(named)})
        else:
            result[name] = copy.deepcopy(default) if copied else default
    return ({}, errors) if errors else (result, None)


COMMON = (Any, int, float, str, bool, dict, list, typing.Optional[int], typing.Optional[float],
          typing.Optional[str], typing.Optional[bool], dict[str, Any], list[str], list[int], list[float],
          typing.Optional[dict[str, Any]], typing.Optional[list[str]], dt.datetime, dt.date)
_SAMPLES: dict[Any, Any] = {int: "1", float: "1.5", str: "s", bool: "true", dict: {}, list: [],
                            dt.datetime: "2020-01-01T00:00:00", dt.date: "2020-01-01"}


def warm(rounds: int = 12) -> None:
    """Build the adapters of the common annotations and validate sample values with them (the
    fork server's template: its children then find them built and specialised, in shared
    memory). Builds nothing of any user's code."""
    for annotation in COMMON:
        validator = adapter(annotation)
        sample = _SAMPLES.get(annotation)
        for _ in range(rounds):
            for value in (sample, None, object()):
                try:
                    validator.validate_python(value)
                except pydantic.ValidationError as exc:
                    exc.errors()
