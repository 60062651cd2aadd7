"""The generated SQLite statements (:mod:`.sqlite_sql`) as callables for the plain path
(:mod:`.lite`): bind values through the column codecs into positional parameters, and rows
back through the result codecs. Built once per statement, on first use."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from . import sqlite_sql as sql
from .sqlite_codecs import BIND, RESULT


class Statement:
    """One generated statement: ``args(values)`` gives (SQL, positional parameters) through the
    bind codecs (expanding ``IN`` lists rendered as SQLAlchemy renders them); ``row(raw)`` a
    dict keyed by column through the result codecs."""

    __slots__ = ("sql", "_plan", "_results", "_expands", "_fixed")

    def __init__(self, spec: tuple[str, tuple[Any, ...], tuple[Any, ...]]):
        text, plan, results = spec
        self.sql = text
        self._plan = tuple((kind, key, _fast_codec(codec)) for kind, key, codec in plan)
        self._results = tuple((key, RESULT[codec]) for key, codec in results)
        self._expands = any(kind.startswith("expand") for kind, _, _ in plan)
        self._fixed = None if self._expands else _args_function(self._plan)

    def args(self, values: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        if self._fixed is not None:
            return self.sql, self._fixed(values)
        text, out = self.sql, []
        for kind, key, process in self._plan:
            if kind in ("bind", "const"):
                out.append(key if kind == "const" else (values[key] if process is None else process(values[key])))
                continue
            items = list(key) if kind == "expand_const" else [v if process is None else process(v) for v in values[key]]
            # Markers are in parameter order (positional style): expand the first one left.
            start = text.index(_MARKER)
            end = text.index("]", start) + 1
            text = text[:start] + (", ".join("?" * len(items)) if items else "NULL") + text[end:]
            out.extend(items)
        return text, tuple(out)

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        return {key: value if process is None else process(value) for (key, process), value in zip(self._results, raw)}


def _args_function(plan: Sequence[tuple[str, Any, Any]]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """:func:`args_function` of a generated statement's plan (``("const", value, None)`` or
    ``("bind", key, codec)`` per position; no expanding lists)."""
    return args_function([(None, None, key) if kind == "const" else (key, process, None) for kind, key, process in plan])


def args_function(slots: Sequence[tuple[str | None, Any, Any]]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """``values -> positional tuple`` for ``slots`` (per position: ``(key, codec or None, _)``,
    or ``(None, _, constant)``), as one generated function with a constant or
    ``p<i>(values[<key>])`` per position: the group-commit flusher runs it for every row of a
    batch, where a loop over the slots costs about twice as much. Both stores' statements use it."""
    namespace: dict[str, Any] = {}
    items = []
    for i, (key, process, const) in enumerate(slots):
        if key is None:
            namespace[f"c{i}"] = const
            items.append(f"c{i}")
        elif process is None:
            items.append(f"values[{key!r}]")
        else:
            namespace[f"p{i}"] = process
            items.append(f"p{i}(values[{key!r}])")
    exec(f"def args(values):\n    return ({', '.join(items)},)\n", namespace)  # noqa: S102 - from column names
    return namespace["args"]


# id(datetime) -> (the datetime, its bound text): one memo for every datetime position of every
# statement, since one timestamp object fills several (a task run's start_time and its Running
# state's timestamp; its end_time, state_timestamp and Completed state). Per position, the
# group-commit flusher formatted each of them again (isoformat was a quarter of its GIL time).
# Holding the objects makes an identity match never a recycled id; bounded; plain dict steps
# only, so the flusher, the log shipper and the engine's thread can share it.
_DATETIME_TEXT: dict[int, tuple[Any, Any]] = {}
_DATETIME_MEMO_MAX = 4096


def _fast_codec(codec: str | None) -> Callable[[Any], Any] | None:
    """The bind codec, for JSON without the serializer for ``{}`` (most state rows) and for
    datetimes formatting each object once (see :data:`_DATETIME_TEXT`)."""
    process = BIND[codec]
    if codec == "json":
        empty = process({})  # type: ignore[misc]
        return lambda value: empty if type(value) is dict and not value else process(value)  # type: ignore[misc]
    if codec != "datetime":
        return process
    memo = _DATETIME_TEXT

    def datetime_once(value: Any) -> Any:
        seen = memo.get(id(value))
        if seen is not None and seen[0] is value:
            return seen[1]
        text = process(value)  # type: ignore[misc]
        if len(memo) >= _DATETIME_MEMO_MAX:
            memo.clear()
        memo[id(value)] = (value, text)
        return text

    return datetime_once


_MARKER = "__[POSTCOMPILE_"  # SQLAlchemy's placeholder for an expanding IN list
_STATEMENTS: dict[str, Statement] = {}


def statement(name: str) -> Statement:
    found = _STATEMENTS.get(name)
    if found is None:
        found = _STATEMENTS[name] = Statement(sql.STATEMENTS[name])
    return found
