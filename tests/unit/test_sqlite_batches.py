"""Many rows per INSERT (orchestrator/sqlite_batches.py): the same rows and ids as executemany,
in a few statement sizes, and a bad row still fails the whole batch."""

from __future__ import annotations

import sqlite3

import pytest

from fleetflow.orchestrator.sqlite_batches import MAX_PARAMETERS, chunk_sizes, insert_rows, multi_row

SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT NOT NULL, b INTEGER, UNIQUE (a))"
INSERT = "INSERT INTO t (a, b) VALUES (?, ?)"


def _run(dbapi, text, params):
    return dbapi.execute(text, params)


def _db(tmp_path, name):
    conn = sqlite3.connect(tmp_path / name, isolation_level=None)
    conn.execute(SCHEMA)
    return conn


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 65, 333, 1000, 1001])
def test_rows_and_ids_are_those_of_executemany(tmp_path, n):
    rows = [(f"value {i}", i if i % 3 else None) for i in range(n)]
    many, batched = _db(tmp_path, "many.db"), _db(tmp_path, "batched.db")
    many.executemany(INSERT, rows)
    insert_rows(_run, batched, INSERT, rows)
    query = "SELECT id, a, b FROM t ORDER BY id"
    assert batched.execute(query).fetchall() == many.execute(query).fetchall()


@pytest.mark.parametrize("columns", [1, 6, 7, 15, 999, 1200])
def test_chunk_sizes_cover_every_row_within_the_parameter_limit(columns):
    for n in (0, 1, 5, 63, 64, 100, 1000, 4097):
        sizes = chunk_sizes(n, columns)
        assert sum(sizes) == n
        assert all(size * columns <= max(MAX_PARAMETERS, columns) for size in sizes)
        assert len(set(sizes)) <= 10  # a few statement texts per table, whatever the batch length


def test_a_duplicate_in_a_chunk_fails_the_statement_and_nothing_of_it_stays(tmp_path):
    conn = _db(tmp_path, "dup.db")
    rows = [(f"value {i}", i) for i in range(50)] + [("value 3", 99)]
    conn.execute("BEGIN")
    with pytest.raises(sqlite3.IntegrityError):
        insert_rows(_run, conn, INSERT, rows)
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_not_a_one_row_insert_is_refused():
    with pytest.raises(ValueError, match="one-row INSERT"):
        multi_row("UPDATE t SET a = ?", 2)


def test_a_big_batch_is_a_few_statements_not_one_per_row(tmp_path):
    """The reason for the module: executemany steps (and releases the GIL) once per row. SQLite
    traces each statement it runs: one per chunk here."""
    conn = _db(tmp_path, "count.db")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    insert_rows(_run, conn, INSERT, [(f"value {i}", i) for i in range(3000)])
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (3000,)
    assert len(statements) <= 3000 // min(256, MAX_PARAMETERS // 2) + 10
