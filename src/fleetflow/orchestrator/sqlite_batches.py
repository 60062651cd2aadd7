"""Many rows per ``INSERT`` statement on SQLite, for the group-commit flusher and the log shipper.

Why not ``executemany``: Python's sqlite3 releases the GIL around every row's step. The
writers run in background threads while the engine's main thread is busy in Python, so each
release hands the GIL to the main thread, and the writer then waits up to the interpreter's
switch interval (5 ms) to get it back: a batch of 3,000 rows measured 13 s of wall time and
twenty times its CPU in hand-offs next to one busy thread, against 0.2 s with one statement of
many rows (which releases the GIL once). The rows and their ids come out exactly as
``executemany`` writes them: one ``VALUES`` group per row, in order.

Statements come in a few fixed sizes (a full chunk, then powers of two for the rest), so the
connection's statement cache holds each text once instead of one text per batch length.
"""

from __future__ import annotations

from itertools import chain
from typing import Any, Callable, Sequence

# SQLite's default limit on parameters per statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32
# is 32766; older builds have 999) -- a chunk stays under the older one too.
MAX_PARAMETERS = 999
MAX_ROWS = 256

_TEXTS: dict[tuple[str, int], str] = {}


def multi_row(sql: str, rows: int) -> str:
    """``sql`` (one ``INSERT ... VALUES (?, ...)``) with ``rows`` groups of parameters."""
    text = _TEXTS.get((sql, rows))
    if text is None:
        head, sep, group = sql.rpartition(" VALUES ")
        if not sep or not group.startswith("(") or not group.rstrip().endswith(")"):
            raise ValueError(f"not a one-row INSERT ... VALUES statement: {sql[:80]!r}")
        text = _TEXTS[(sql, rows)] = f"{head} VALUES {', '.join([group.strip()] * rows)}"
    return text


def chunk_sizes(n: int, columns: int) -> list[int]:
    """How ``n`` rows of ``columns`` values are split into statements: full chunks, then the
    remainder in powers of two (at most a handful of distinct statement texts per table)."""
    full = max(1, min(MAX_ROWS, MAX_PARAMETERS // max(columns, 1)))
    sizes = [full] * (n // full)
    rest = n % full
    power = 1 << (full.bit_length() - 1)
    while rest:
        while power > rest:
            power >>= 1
        sizes.append(power)
        rest -= power
    return sizes


def insert_rows(run: Callable[[Any, str, Sequence[Any]], Any], dbapi: Any, sql: str,
                rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (positional tuples for ``sql``) with as few statements as
    :func:`chunk_sizes` allows; ``run(dbapi, text, params)`` executes one (and translates errors)."""
    if not rows:
        return
    start = 0
    for size in chunk_sizes(len(rows), len(rows[0])):
        part = rows[start:start + size]
        start += size
        run(dbapi, sql if size == 1 else multi_row(sql, size), list(chain.from_iterable(part)))
