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
    if type(value) is dt.datetime:  # the engine's own timestamps: no converted copies
        zone = value.tzinfo
        if zone is None:
            return value.isoformat(" ", "microseconds")
        if zone is not UTC:
            value = value.astimezone(UTC)
        return value.isoformat(" ", "microseconds")[:26]  # without its "+00:00"
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


# A moment whose text shows the format: a store whose timestamp processor writes it differently
# cannot take log_time's text (sqlite_fast checks).
EPOCH_PLUS = dt.datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=UTC)
EPOCH_PLUS_TEXT = "2001-02-03 04:05:06.000007"
_last: list[tuple[Any, str]] = [(None, "")]  # (the unix time formatted last, its text)
_second: list[tuple[Any, Any, str]] = [(None, None, "")]  # (int(unix time), its UTC second, "YYYY-MM-DD HH:MM:SS")


def log_time(seconds: float) -> str:
    """``datetime_bind`` of the UTC moment ``seconds`` after the epoch (a log line's
    ``time.time()``), with the date and time of day formatted once a second: the log shipper
    stores several lines per task run. The cached second is checked against the datetime
    itself, as rounding to microseconds may carry into the next second."""
    last_seconds, last_text = _last[0]  # one tuple: read at once, whatever other threads do
    if seconds == last_seconds:  # a task run's announce lines share one moment
        return last_text
    moment = dt.datetime.fromtimestamp(seconds, UTC)
    whole, second, text = _second[0]
    if whole != int(seconds) or second != moment.second:
        text = moment.replace(tzinfo=None, microsecond=0).isoformat(" ")
        _second[0] = (int(seconds), moment.second, text)
    text = f"{text}.{moment.microsecond:06d}"
    _last[0] = (seconds, text)
    return text
