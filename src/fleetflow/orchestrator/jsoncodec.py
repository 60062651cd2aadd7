"""How the store writes JSON columns: one encoder shared by the engines (SQLAlchemy's
``json_serializer``) and by checks that must refuse a value before it reaches a column."""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from pathlib import Path
from typing import Any

import pydantic


def _json_default(value: Any) -> Any:
    """Let JSON columns hold the values flows commonly put in parameters and state data."""
    own = getattr(value, "__fleetflow_json__", None)
    if own is not None:  # blocks: a reference, never their (masked) fields
        return own()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (uuid.UUID, Path)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable; store a reference to it instead")


# One encoder for every call: ``json.dumps(value, default=...)`` builds a new JSONEncoder each
# time, which costs as much as encoding a small state's data (several per task run).
_ENCODER = json.JSONEncoder(default=_json_default)


try:  # CPython's C encoder, made once: JSONEncoder.encode makes one per call (half its cost on a state's data)
    from json.encoder import c_make_encoder, encode_basestring_ascii

    _C_ENCODE: Any = c_make_encoder(None, _json_default, encode_basestring_ascii, None, ": ", ", ", False, False, True)
except (ImportError, TypeError):  # another interpreter
    _C_ENCODE = None


def json_dumps(value: Any) -> str:
    """``json.dumps(value, default=_json_default)``.

    The shared C encoder skips the check for circular values (it has no per-call memo); a
    circular value recurses until RecursionError, and then the ordinary encoder gives its
    ``ValueError("Circular reference detected")``, as before."""
    if _C_ENCODE is not None:
        try:
            return "".join(_C_ENCODE(value, 0))
        except RecursionError:
            pass
    return _ENCODER.encode(value)


_SCALARS = (str, int, bool)


def round_trips(value: Any, depth: int = 0) -> bool:
    """True when JSON gives ``value`` back unchanged, cheaply decided: str/int/bool/None, and
    dicts with str keys and lists of those (no floats: NaN and infinities), a few levels deep.
    The engine's result references are such values; anything else takes the real round trip."""
    kind = type(value)
    if kind in _SCALARS or value is None:
        return True
    if depth > 4:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not round_trips(item, depth + 1):
                return False
        return True
    if kind is list:
        for item in value:
            if not round_trips(item, depth + 1):
                return False
        return True
    return False
