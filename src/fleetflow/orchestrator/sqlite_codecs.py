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


BIND: dict[str | None, Callable[[Any], Any] | None] = {None: None, "datetime": datetime_bind, "json": json_bind}
RESULT: dict[str | None, Callable[[Any], Any] | None] = {None: None, "datetime": datetime_result, "json": json_result}
