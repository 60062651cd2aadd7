"""The plain SQLite path (orchestrator/lite.py: generated SQL on sqlite3, no SQLAlchemy) against
the SQLAlchemy Core path: the generated SQL is what SQLAlchemy compiles today, the same calls
store the same rows byte for byte and raise the same errors, and whatever the plain path does
not cover is served by the full store, transparently."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from fleetflow.exceptions import (
    ConfigurationError, InvalidStateTransition, ObjectAlreadyExists, ObjectNotFound, ParameterValidationError,
)
from fleetflow.orchestrator import Orchestrator, SQLiteOrchestrator, migrations
from fleetflow.orchestrator import sqlgen, sqlite_codecs
from fleetflow.orchestrator.lite import PlainSQLiteStore, open_store, plain_sqlite_database
from fleetflow.orchestrator.schemas import LogRecord
from fleetflow.states import Cancelled, Completed, Failed, Pending, Running, Scheduled, State

T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)
CET = dt.timezone(dt.timedelta(hours=2))
TABLES = {"flow_runs": "id", "task_runs": "id", "states": "id", "logs": "id", "task_cache": "cache_key"}


class CoreSQLiteOrchestrator(SQLiteOrchestrator):
    """SQLite with the DBAPI fast path of sqlite_fast.py switched off: every call on Core."""

    def _insert_task_run(self, values: dict[str, Any], history: list[dict[str, Any]]) -> None:
        Orchestrator._insert_task_run(self, values, history)

    def _set_task_run_state_now(self, task_run_id: str, state: State, force: bool) -> Any:
        return Orchestrator._set_task_run_state_now(self, task_run_id, state, force)

    def _commit_task_runs(self, rows: list[dict[str, Any]], history: list[dict[str, Any]],
                          updates: Any = ()) -> Any:
        return Orchestrator._commit_task_runs(self, rows, history, updates)

    def read_cache(self, cache_key: str) -> Any:
        return Orchestrator.read_cache(self, cache_key)

    def write_cache(self, cache_key: str, result: dict[str, Any], expiration: dt.datetime | None) -> None:
        Orchestrator.write_cache(self, cache_key, result, expiration)


def _url(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path / name}"


def _plain_store(url: str) -> PlainSQLiteStore:
    Orchestrator.create(url).dispose()  # create and migrate the file
    store = open_store(url)
    assert type(store) is PlainSQLiteStore
    return store


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from fleetflow.orchestrator import catalog, leases, lite, runs

    for module in (catalog, leases, lite, runs):  # a frozen clock for ``created``, leases and cache expiry
        monkeypatch.setattr(module, "utcnow", lambda: T0 + dt.timedelta(days=1))
    plain = _plain_store(_url(tmp_path, "plain.db"))
    core = CoreSQLiteOrchestrator(CoreSQLiteOrchestrator.create_engine(sa.make_url(_url(tmp_path, "core.db"))))
    migrations.migrate(core.engine)
    yield plain, core
    plain.dispose()
    core.dispose()


def _dump(path: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value as SQLite holds it (timestamps and JSON as text), with its type."""
    conn = sqlite3.connect(path)
    try:
        dump = {}
        for table, order in TABLES.items():
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            typed = ", ".join(f"{c}, typeof({c})" for c in columns)
            dump[table] = conn.execute(f"SELECT {typed} FROM {table} ORDER BY {order}").fetchall()
        return dump
    finally:
        conn.close()


def _same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if a is None:
        return
    assert a.model_dump() == b.model_dump()
    assert a.model_fields_set == b.model_fields_set


def _both(stores: tuple[Any, Any], call: Callable[[Any], Any]) -> Any:
    """Run ``call`` on both stores: equal results, or the same error."""
    outcomes = []
    for store in stores:
        try:
            outcomes.append(("ok", call(store)))
        except Exception as exc:  # noqa: BLE001 - compared below
            outcomes.append(("error", exc))
    (kind_a, a), (kind_b, b) = outcomes
    assert kind_a == kind_b, outcomes
    if kind_a == "error":
        assert type(a) is type(b), outcomes
        if isinstance(a, sa.exc.StatementError):  # parameters print with object addresses
            assert (type(a.orig), str(a.orig)) == (type(b.orig), str(b.orig))
        else:
            assert str(a) == str(b)
        return a
    if isinstance(a, (dict, list, type(None))):
        assert a == b
    else:
        _same(a, b)
    return a


def test_the_generated_sql_is_what_sqlalchemy_compiles_today():
    """If this fails: python -m fleetflow.orchestrator.sqlgen, and commit sqlite_sql.py."""
    assert sqlgen.TARGET.read_text() == sqlgen.render()


def test_log_time_is_datetime_bind_of_the_moment():
    import random

    rng = random.Random(7)
    base = T0.timestamp()
    moments = [base, base + 0.9999996, base + 0.9999994, base + 59.9999999, 1e9 + 0.5, 0.0]
    moments += [base + rng.uniform(0, 5) for _ in range(2000)]
    for seconds in moments + sorted(moments):  # in and out of order: the per-second cache
        expected = sqlite_codecs.datetime_bind(dt.datetime.fromtimestamp(seconds, dt.timezone.utc))
        assert sqlite_codecs.log_time(seconds) == expected, seconds


def test_each_codec_does_what_sqlalchemys_processor_does():
    dialect = sqlgen.dialect()
    samples = {
        "datetime": [None, T0, T0.astimezone(CET), dt.datetime(2024, 5, 1, 13, 0), dt.datetime(2024, 1, 1, 0, 0, 0, 1)],
        "json": [None, {}, [], {"a": [1, 2.5, None, "x"]}, {"when": T0, "pair": (1, 2), "s": {3}}, "text", 7],
        "bool": [None, True, False],
    }
    checked = set()
    for name, (stmt, keys) in sqlgen.statements().items():
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
        _, plan, results = sqlgen.compile_one(stmt, keys, dialect)
        for (kind, _key, codec), bind_name in zip(plan, compiled.positiontup):
            processor = compiled.binds[bind_name].type.dialect_impl(dialect).bind_processor(dialect)
            if codec is None:
                assert processor is None, (name, bind_name)
                continue
            checked.add(codec)
            for value in samples[codec]:
                assert sqlite_codecs.BIND[codec](value) == processor(value), (name, bind_name, value)
        for key, codec in results:
            column = stmt.exported_columns[key]
            processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if codec is None:
                assert processor is None, (name, key)
                continue
            for value in samples[codec]:
                stored = processor and sqlite_codecs.BIND[codec](value)
                assert sqlite_codecs.RESULT[codec](stored) == processor(stored), (name, key, value)
    assert checked == {"datetime", "json"}


def test_same_rows_results_and_errors_as_the_core_path(stores):
    plain, core = stores
    flow_id, sub_id, t1, t2, t3, missing = (str(uuid.UUID(int=i)) for i in range(1, 7))
    params = {"n": 3, "when": T0, "nested": {"xs": [1, 2]}}
    _both(stores, lambda s: s.create_flow_run("f", id=flow_id, name="r", state=Pending(timestamp=T0), parameters=params,
                                              tags=["b", "a"], expected_start_time=T0.astimezone(CET)))
    _both(stores, lambda s: s.update_flow_run(flow_id, infrastructure_pid="process:h:1:2", infrastructure={"kind": "in-process"}))
    _both(stores, lambda s: s.set_flow_run_state(flow_id, Running(timestamp=T0 + dt.timedelta(seconds=1))))
    _both(stores, lambda s: s.acquire_lease(flow_id, "process:h:1:2", lease_seconds=30))
    _both(stores, lambda s: s.renew_leases("process:h:1:2", lease_seconds=60))
    assert _both(stores, lambda s: s.renew_leases("other", lease_seconds=90, take=[flow_id, missing])) == [flow_id]
    _both(stores, lambda s: s.create_task_run(
        flow_id, "mod.task", "task", id=t1, dynamic_key="3",
        states=[Pending(timestamp=T0, message="waiting"), Running(timestamp=T0 + dt.timedelta(seconds=1), data={"k": [1, 2]})],
    ))
    _both(stores, lambda s: s.create_task_run(flow_id, "mod.other", "other", id=t2, cache_key="ck", states=[Pending(timestamp=T0)]))
    _both(stores, lambda s: s.set_task_run_state(t1, Completed(timestamp=T0 + dt.timedelta(seconds=2), data={"at": T0, "p": (1, 2)})))
    _both(stores, lambda s: s.set_task_run_state(t2, Running(timestamp=dt.datetime(2024, 5, 1, 13, 0))))
    _both(stores, lambda s: s.set_task_run_state(t2, Scheduled(name="AwaitingRetry", timestamp=T0.astimezone(CET))))
    _both(stores, lambda s: s.set_task_run_state(t2, Running(name="Retrying", timestamp=T0 + dt.timedelta(minutes=5))))
    _both(stores, lambda s: s.set_task_run_state(t2, Failed(message="boom", timestamp=T0 + dt.timedelta(minutes=6))))
    _both(stores, lambda s: s.set_task_run_state(t2, Running(timestamp=T0 + dt.timedelta(minutes=7)), force=True))
    _both(stores, lambda s: s.create_task_run(flow_id, "mod.c", "c", id=t3, states=[Scheduled(timestamp=T0)]))
    # A sub-flow run: its parent flow run comes from the parent task run (a subquery).
    _both(stores, lambda s: s.create_flow_run("sub", id=sub_id, name="s", parent_task_run_id=t3, state=Pending(timestamp=T0)))
    _both(stores, lambda s: s.set_flow_run_state(sub_id, Cancelled(timestamp=T0)))
    _both(stores, lambda s: s.write_logs([LogRecord(flow_run_id=flow_id, level=20, name="n", message="m1", timestamp=T0),
                                          LogRecord(task_run_id=t1, level=40, name="x", message="m2", timestamp=T0.astimezone(CET))]))
    # The shipper's tuples: (flow run, task run, level, logger, message, time.time()), the
    # same moment twice (a task run's announce lines) and one that rounds into the next second.
    shipped = [(flow_id, t1, 20, "fleetflow.runs", "a", T0.timestamp() + 0.25),
               (flow_id, t1, 20, "fleetflow.runs", "b", T0.timestamp() + 0.25),
               (flow_id, None, 30, "fleetflow.runs", "c", T0.timestamp() + 1.9999996)]
    _both(stores, lambda s: s.write_log_rows(shipped))
    _both(stores, lambda s: s.write_cache("a", {"v": 2, "when": T0}, dt.datetime(2999, 1, 1, tzinfo=dt.timezone.utc)))
    _both(stores, lambda s: s.write_cache("a", {"v": 3}, None))
    _both(stores, lambda s: s.write_cache("old", {"v": 4}, T0))
    assert _both(stores, lambda s: s.read_cache("a")) == {"v": 3}
    assert _both(stores, lambda s: s.read_cache("old")) is None
    _both(stores, lambda s: s.read_flow_run(sub_id))
    _both(stores, lambda s: s.set_flow_run_state(flow_id, Completed(timestamp=T0 + dt.timedelta(seconds=9))))
    assert plain.__dict__["_full"] is None  # all of the above without the full store
    # The errors, raised as the Core path raises them.
    assert isinstance(_both(stores, lambda s: s.set_task_run_state(t1, Running(timestamp=T0))), InvalidStateTransition)
    assert isinstance(_both(stores, lambda s: s.set_flow_run_state(missing, Running(timestamp=T0))), ObjectNotFound)
    assert isinstance(_both(stores, lambda s: s.set_task_run_state(missing, Running(timestamp=T0))), ObjectNotFound)
    assert isinstance(_both(stores, lambda s: s.create_task_run(missing, "k", "n")), ObjectNotFound)
    assert isinstance(_both(stores, lambda s: s.create_task_run(flow_id, "k", "n", id=t1)), ObjectAlreadyExists)
    assert isinstance(_both(stores, lambda s: s.create_flow_run("f", id=flow_id, name="again")), ObjectAlreadyExists)
    assert isinstance(_both(stores, lambda s: s.update_flow_run(missing, infrastructure_pid="x", infrastructure={})), ObjectNotFound)
    assert isinstance(_both(stores, lambda s: s.create_flow_run("f", parameters={"x": object()})), ParameterValidationError)
    assert isinstance(_both(stores, lambda s: s.set_task_run_state(t3, Running(data={"x": object()}))), sa.exc.StatementError)

    plain_rows, core_rows = _dump(plain.database), _dump(core.engine.url.database)
    assert plain_rows["task_runs"] and plain_rows["logs"] and len(plain_rows["flow_runs"]) == 2
    for table in TABLES:
        assert plain_rows[table] == core_rows[table], table


def test_group_committed_task_runs_store_the_same_rows(stores):
    plain, core = stores
    for store in stores:
        store.enable_group_commit(60.0)  # commits only when flushed, or when an immediate write needs it
    flow_id = str(uuid.UUID(int=1))
    _both(stores, lambda s: s.create_flow_run("f", id=flow_id, name="r", state=Running(timestamp=T0)))
    for i in range(2, 6):
        run_id = str(uuid.UUID(int=i))
        _both(stores, lambda s: s.create_task_run(flow_id, "k", f"t{i}", id=run_id, dynamic_key=str(i),
                                                  states=[Pending(timestamp=T0)]))
        _both(stores, lambda s: s.set_task_run_state(run_id, Running(timestamp=T0 + dt.timedelta(seconds=i))))
        _both(stores, lambda s: s.set_task_run_state(run_id, Completed(timestamp=T0 + dt.timedelta(seconds=i + 1), data={"i": i})))
    assert _dump(plain.database)["task_runs"] == []  # still buffered
    _both(stores, lambda s: s.set_flow_run_state(flow_id, Completed(timestamp=T0 + dt.timedelta(minutes=1))))
    plain_rows, core_rows = _dump(plain.database), _dump(core.engine.url.database)
    assert len(plain_rows["task_runs"]) == 4 and len(plain_rows["states"]) == 14
    assert plain_rows == core_rows


def test_what_it_does_not_cover_is_served_by_the_full_store(tmp_path):
    store = _plain_store(_url(tmp_path, "s.db"))
    try:
        store.enable_group_commit(60.0)
        run = store.create_flow_run("f", state=Running())
        task = store.create_task_run(run.id, "k", "t", states=[Pending(), Running()])  # buffered
        assert store.__dict__.get("_full") is None
        # Full-store methods: reads see the buffered records (one buffer), writes commit them first.
        assert [t.id for t in store.read_task_runs(run.id)] == [task.id]
        assert store.__dict__.get("_full") is not None and store.engine.dialect.name == "sqlite"
        assert store.read_flow_runs(limit=5)[0].id == run.id
        store.set_task_run_state(task.id, Completed())
        deployment_run = store.create_flow_run("f", deployment_id=str(uuid.uuid4()), idempotency_key="k")
        assert store.create_flow_run("f", deployment_id=deployment_run.deployment_id, idempotency_key="k").id == deployment_run.id
        store.update_flow_run(run.id, tags=["x"])
        assert store.read_flow_run(run.id).tags == ["x"]
        store.delete_flow_run(deployment_run.id)
        with pytest.raises(ObjectNotFound):
            store.read_flow_run(deployment_run.id)
        assert store.read_task_run(task.id).state.type.value == "COMPLETED"
    finally:
        store.dispose()
    rows = _dump(str(tmp_path / "s.db"))
    assert [r[0] for r in rows["task_runs"]] == [task.id]


def test_open_store_takes_the_plain_path_only_for_a_current_sqlite_file(tmp_path, monkeypatch):
    from fleetflow.settings import reset_settings

    url = _url(tmp_path, "new.db")
    first = open_store(url)  # a new store: created and migrated by the full store, then served plainly
    assert type(first) is PlainSQLiteStore
    assert type(first.full_store()) is SQLiteOrchestrator  # the one that migrated it, kept
    run = first.create_flow_run("f")
    assert first.full_store().read_flow_run(run.id).id == run.id
    first.dispose()
    second = open_store(url)
    assert type(second) is PlainSQLiteStore
    second.dispose()
    monkeypatch.setenv("FLEETFLOW_PLAIN_SQLITE", "false")  # the setting that turns it off
    reset_settings()
    try:
        off = open_store(url)
        assert type(off) is SQLiteOrchestrator
        off.dispose()
    finally:
        monkeypatch.delenv("FLEETFLOW_PLAIN_SQLITE")
        reset_settings()
    conn = sqlite3.connect(tmp_path / "new.db")
    conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', '2030-01-01 00:00:00')",
                 (migrations.LATEST_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(ConfigurationError, match="newer than this fleetflow understands"):
        open_store(url)  # the full store's check and message
    assert plain_sqlite_database("sqlite:////tmp/x.db") == "/tmp/x.db"
    assert plain_sqlite_database("sqlite:///rel/x.db") == "rel/x.db"
    for other in ("postgresql+psycopg://u@h/db", "sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=ro&uri=true",
                  "sqlite:////tmp/a%20b.db", "sqlite:////tmp/x.db?timeout=5"):
        assert plain_sqlite_database(other) is None, other


def test_a_forked_child_writes_on_its_own_connection(tmp_path):
    """The plain store's connections are per process: a child started by fork opens its own."""
    import multiprocessing

    store = _plain_store(_url(tmp_path, "f.db"))
    run = store.create_flow_run("f", state=Running())

    def child() -> None:
        store.create_task_run(run.id, "k", "from-child", states=[Pending()])

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
    store.create_task_run(run.id, "k", "from-parent", states=[Pending()])
    assert sorted(t.name for t in store.read_task_runs(run.id)) == ["from-child", "from-parent"]
    store.dispose()


SCRIPT = textwrap.dedent(
    """
    import json, sys
    from fleetflow import flow, task, get_run_logger

    @task
    def add(x):
        get_run_logger().info("adding %s", x)
        return x + 1

    @flow
    def child(x):
        return add(x)

    @flow
    def parent():
        a = add(1)
        b = child(a)
        print(json.dumps({"result": b, "sqlalchemy": "sqlalchemy" in sys.modules}), flush=True)
        return b

    parent()
    """
)


def test_a_script_flow_with_a_subflow_on_an_existing_store_needs_no_sqlalchemy(tmp_path):
    import os

    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path / "home")}
    (tmp_path / "script.py").write_text(SCRIPT)
    outs = [subprocess.run([sys.executable, str(tmp_path / "script.py")], capture_output=True, text=True, env=env, timeout=300)
            for _ in range(2)]
    for out in outs:
        assert out.returncode == 0, out.stderr[-3000:]
    reports = [json.loads(out.stdout.strip().splitlines()[-1]) for out in outs]
    assert reports == [{"result": 3, "sqlalchemy": True}, {"result": 3, "sqlalchemy": False}]
    store = Orchestrator.create(f"sqlite:///{tmp_path / 'home' / 'fleetflow.db'}")
    try:
        runs = store.read_flow_runs(limit=10)
        assert sorted(r.flow_name for r in runs) == ["child", "child", "parent", "parent"]
        assert {r.state_type.value for r in runs} == {"COMPLETED"}
        latest_child = next(r for r in runs if r.flow_name == "child")
        assert latest_child.parent_flow_run_id is not None and latest_child.parent_task_run_id is not None
        for run in runs:
            assert [s.type.value for s in store.read_flow_run_states(run.id)] == ["PENDING", "RUNNING", "COMPLETED"]
            assert re.fullmatch(r"process:.*", run.lease_owner or "")
        lines = [r.message for r in store.read_logs(flow_run_id=latest_child.id)]
        assert "adding 2" in lines
    finally:
        store.dispose()


def test_datetime_binds_are_shared_across_statements_and_never_match_a_recycled_object():
    """One timestamp fills several positions of several statements (a task run's end_time and
    its Completed state's timestamp): it is formatted once; a new datetime that happens to get
    a dropped one's id still gets its own text."""
    from fleetflow.orchestrator import lite_statements as ls
    from fleetflow.orchestrator.lite_statements import statement

    task_run, history = statement("insert_task_run"), statement("insert_history")
    bind_end = next(p for kind, key, p in task_run._plan if key == "end_time")
    bind_state_time = next(p for kind, key, p in history._plan if key == "timestamp")
    moment = dt.datetime(2024, 5, 1, 12, 0, 0, 999_999, tzinfo=CET)
    assert bind_end(moment) == "2024-05-01 10:00:00.999999" == sqlite_codecs.datetime_bind(moment)
    assert ls._DATETIME_TEXT[id(moment)] == (moment, "2024-05-01 10:00:00.999999")
    assert bind_state_time(moment) is bind_end(moment)  # the text made once, for both statements
    # The memo holds what it saw, so a dropped datetime's id is not reused while its entry lives;
    # the identity check still guards the entries of a cleared-and-refilled memo.
    for i in range(ls._DATETIME_MEMO_MAX + 10):  # past the bound: cleared once, refilled
        value = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=i)
        assert bind_state_time(value) == sqlite_codecs.datetime_bind(value)
    assert len(ls._DATETIME_TEXT) <= ls._DATETIME_MEMO_MAX
