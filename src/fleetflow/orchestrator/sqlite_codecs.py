"""How values cross into and out of SQLite columns, without SQLAlchemy.

The SQLAlchemy types in :mod:`.tables` use these very functions on SQLite (``UTCDateTime``),
or do what they do (``JSONColumn``: SQLAlchemy's JSON type with the store's serialiser), so the
plain SQLite path (:mod:`.lite`) stores byte-for-byte what the Core path stores. The generated
statements (:mod:`.sqlite_sql`) name a codec per parameter and per result column; a unit test
checks each name against what SQLAlchemy's processors do.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable

from .jsoncodec import json_dumps

UTC = dt.timezone.utc


def datetime_bind(value: dt.datetime | None) -> str | None:
    """Naive UTC text as SQLAlchemy's SQLite DATETIME writes it ("YYYY-MM-DD HH:MM:SS.ffffff");
    a naive datetime is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def datetime_result(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value).replace(tzinfo=UTC)


def json_bind(value: Any) -> str | None:
    """Python None is SQL NULL (``none_as_null``)."""
    return None if value is None else json_dumps(value)


def json_result(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def bool_bind(value: Any) -> int | None:
    """SQLite has no boolean type: 0/1, as SQLAlchemy's non-native Boolean writes it (None, True
    and False only -- and so 0 and 1 -- with its errors for anything else)."""
    if value not in _STRICT_BOOLS:
        if not isinstance(value, int):
            raise TypeError(f"Not a boolean value: {value!r}")
        raise ValueError(f"Value {value!r} is not None, True, or False")
    return None if value is None else int(value)


_STRICT_BOOLS = frozenset([None, True, False])


def bool_result(value: Any) -> bool | None:
    return None if value is None else bool(value)


BIND: dict[str | None, Callable[[Any], Any] | None] = {
    None: None, "datetime": datetime_bind, "json": json_bind, "bool": bool_bind,
}
RESULT: dict[str | None, Callable[[Any], Any] | None] = {
    None: None, "datetime": datetime_result, "json": json_result, "bool": bool_result,
}
