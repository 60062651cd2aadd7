"""Parameters annotated with plain types are validated field by field (no model per function:
a forked run's freshly imported flow would build it again each run); the outcome -- values,
coercions, errors, defaults -- must be the model's, and anything unusual keeps the model."""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import Any, Literal, Optional

import pydantic
import pytest

from fleetflow.engine import parameters as p
from fleetflow.engine.parameter_fields import plain_annotation, plain_plan
from fleetflow.exceptions import ParameterValidationError


def typed(n: int, ratio: float = 0.5, names: list[str] = [], options: Optional[dict[str, Any]] = None,  # noqa: B006
          mode: Literal["fast", "slow"] = "fast", when: dt.datetime | None = None, pair: tuple[int, ...] = (),
          anything=None, flag: bool = False):
    return n


INPUTS = [
    {"n": "3"}, {"n": 3, "ratio": "0.25", "names": ["a", "b"]}, {"n": "x"}, {}, {"n": 1, "names": "notalist"},
    {"n": 1, "options": {"a": 1}}, {"n": 1, "options": []}, {"n": 1, "mode": "slow"}, {"n": 1, "mode": "medium"},
    {"n": 1, "when": "2024-05-01T10:00:00+00:00"}, {"n": 1, "when": "yesterday"}, {"n": 1, "pair": [1, "2"]},
    {"n": 1, "pair": [1, "x"]}, {"n": 1.5}, {"n": True, "flag": "yes"}, {"n": 1, "flag": "maybe"},
    {"n": 1, "anything": object}, {"n": None, "ratio": None},
]


def through_the_model(fn: Any, named: dict[str, Any]) -> tuple[dict[str, Any], list[Any] | None]:
    try:
        validated = p.parameter_model(fn).model_validate(named)
    except pydantic.ValidationError as exc:
        return {}, exc.errors()
    return {name: getattr(validated, name) for name in type(validated).model_fields}, None


def comparable(errors: list[Any] | None) -> list[Any] | None:
    """Errors without the documentation link and the (whole-input) input of a missing field."""
    return None if errors is None else [
        {k: v for k, v in e.items() if k != "url" and not (e["type"] == "missing" and k == "input")} for e in errors]


@pytest.mark.parametrize("named", INPUTS, ids=[str(i) for i in range(len(INPUTS))])
def test_plain_annotations_validate_as_the_model_does(named):
    assert p._plan(typed) is not None  # this function takes the per-field path
    values, errors = p._validate_named(typed, named)
    model_values, model_errors = through_the_model(typed, named)
    assert comparable(errors) == comparable(model_errors)
    assert values == model_values
    assert [type(v) for v in values.values()] == [type(v) for v in model_values.values()]


def test_an_unhashable_default_is_a_fresh_copy_each_time():
    first, _ = p._validate_named(typed, {"n": 1})
    second, _ = p._validate_named(typed, {"n": 1})
    first["names"].append("changed")
    assert second["names"] == [] and p.validate_parameters(typed, {"n": 1})["names"] == []


def test_errors_name_the_parameter_as_before():
    with pytest.raises(ParameterValidationError) as err:
        p.validate_parameters(typed, {"ratio": "x"})
    assert err.value.field == "n"
    assert str(err.value) == ("invalid parameters for typed: parameter 'n' is required; parameter 'ratio': Input "
                              "should be a valid number, unable to parse string as a number (got 'x')")
    assert p.validate_parameters(typed, {"ratio": "0.1"}, partial=True) == {"ratio": "0.1"}  # as before: raw


class Custom:
    pass


@pytest.mark.parametrize("annotation", [Custom, list[Custom], Optional[Custom], pydantic.BaseModel,
                                        Literal[dt.date(2020, 1, 1)]])
def test_user_types_are_not_plain(annotation):
    assert not plain_annotation(annotation)


def test_fields_pydantic_treats_specially_keep_the_model():
    assert plain_plan({"x": (int, pydantic.Field(1, gt=0))}) is None
    assert plain_plan({"_private": (int, 1)}) is None and plain_plan({"model_name": (str, "m")}) is None
    from typing import Annotated

    assert plain_plan({"x": (Annotated[int, pydantic.Field(gt=0)], 1)}) is None


def test_a_reimported_flow_uses_the_adapters_built_for_the_first_import(tmp_path):
    """What a forked run gains: the same source imported twice gives new functions whose
    plans share the validators (nothing is built for the second)."""
    source = textwrap.dedent("""
        def child(started_at: float = 0.0, names: list[str] | None = None):
            return started_at
    """)
    fns = []
    for i in range(2):
        namespace: dict[str, Any] = {}
        exec(compile(source, str(tmp_path / f"child{i}.py"), "exec"), namespace)
        fns.append(namespace["child"])
    first, second = p._plan(fns[0]), p._plan(fns[1])
    assert first is not None and second is not None and first is not second
    assert [f[1] for f in first] == [f[1] for f in second] and all(a is b for a, b in zip([f[1] for f in first],
                                                                                           [f[1] for f in second]))
    assert p.validate_parameters(fns[1], {"started_at": "2.5"}) == {"started_at": 2.5, "names": None}
