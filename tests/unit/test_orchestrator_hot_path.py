"""The SQLite fast path (orchestrator/sqlite_fast.py) against the shared SQLAlchemy Core path:
the same calls must store the same rows and history, return the same models and raise the
same errors."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from fleetflow.exceptions import InvalidStateTransition, ObjectAlreadyExists, ObjectNotFound
from fleetflow.orchestrator import Orchestrator, SQLiteOrchestrator
from fleetflow.orchestrator import migrations
from fleetflow.states import Cancelled, Completed, Failed, Pending, Running, Scheduled, State

T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)
CET = dt.timezone(dt.timedelta(hours=2))


class CoreSQLiteOrchestrator(SQLiteOrchestrator):
    """SQLite with the fast path switched off: every call on the shared Core implementation."""

    def _insert_task_run(self, values: dict[str, Any], history: list[dict[str, Any]]) -> None:
        Orchestrator._insert_task_run(self, values, history)

    def _set_task_run_state_now(self, task_run_id: str, state: State, force: bool) -> Any:
        return Orchestrator._set_task_run_state_now(self, task_run_id, state, force)

    def read_cache(self, cache_key: str) -> Any:
        return Orchestrator.read_cache(self, cache_key)

    def write_cache(self, cache_key: str, result: dict[str, Any], expiration: dt.datetime | None) -> None:
        Orchestrator.write_cache(self, cache_key, result, expiration)

    def write_log_rows(self, rows: Any) -> None:
        Orchestrator.write_log_rows(self, rows)


def _core_store(url: str) -> CoreSQLiteOrchestrator:
    store = CoreSQLiteOrchestrator(CoreSQLiteOrchestrator.create_engine(sa.make_url(url)))
    migrations.migrate(store.engine)
    return store


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from fleetflow.orchestrator import catalog, runs, sqlite_fast

    for module in (catalog, runs, sqlite_fast):  # a frozen clock for ``created`` and cache expiry
        monkeypatch.setattr(module, "utcnow", lambda: T0 + dt.timedelta(days=1))
    fast = Orchestrator.create(f"sqlite:///{tmp_path}/fast.db")
    core = _core_store(f"sqlite:///{tmp_path}/core.db")
    assert type(fast) is SQLiteOrchestrator
    yield fast, core
    fast.dispose()
    core.dispose()


def _dump(store: Orchestrator) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value, as SQLite holds it (timestamps and JSON as text)."""
    with store.engine.connect() as conn:
        return {
            table: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}"))]
            for table, order in (("task_runs", "id"), ("states", "id"), ("task_cache", "cache_key"), ("flow_runs", "id"),
                                 ("logs", "id"))
        }


def _same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if a is None:
        return
    assert a.model_dump() == b.model_dump()
    assert a.model_fields_set == b.model_fields_set
    if getattr(a, "state", None) is not None:
        assert a.state.model_fields_set == b.state.model_fields_set


def _both(stores: tuple[Orchestrator, Orchestrator], call: Callable[[Orchestrator], Any]) -> Any:
    """Run ``call`` on both stores; they must return equal values or raise the same error."""
    outcomes = []
    for store in stores:
        try:
            outcomes.append(("ok", call(store)))
        except Exception as exc:  # noqa: BLE001 - compared below
            outcomes.append(("error", exc))
    (kind_a, a), (kind_b, b) = outcomes
    assert kind_a == kind_b, outcomes
    if kind_a == "error":
        assert type(a) is type(b)
        if isinstance(a, sa.exc.StatementError):  # parameters print with object addresses
            assert (a.statement, type(a.orig), str(a.orig)) == (b.statement, type(b.orig), str(b.orig))
        else:
            assert str(a) == str(b)
        return a
    if isinstance(a, (dict, type(None))):
        assert a == b
    else:
        _same(a, b)
    return a


def test_same_rows_history_and_results(stores):
    flow_id, t1, t2, t3 = (str(uuid.UUID(int=i)) for i in range(1, 5))
    _both(stores, lambda s: s.create_flow_run("f", id=flow_id, name="r", state=Running(timestamp=T0)))
    # [Pending, Running] with messages and data; one state and a cache key.
    _both(stores, lambda s: s.create_task_run(
        flow_id, "mod.task", "task", id=t1, dynamic_key="3",
        states=[Pending(timestamp=T0, message="waiting"), Running(timestamp=T0 + dt.timedelta(seconds=1), data={"k": [1, 2]})],
    ))
    _both(stores, lambda s: s.create_task_run(flow_id, "mod.other", "other", id=t2, cache_key="ck", states=[Pending(timestamp=T0)]))
    # Completed with data JSON needs the store's serializer for (datetime, tuple, set).
    data = {"result": {"at": T0, "pair": (1, 2)}, "n": None}
    _both(stores, lambda s: s.set_task_run_state(t1, Completed(timestamp=T0 + dt.timedelta(seconds=2), data=data)))
    # Naive (taken as UTC) and non-UTC timestamps; retries: run_count and start_time.
    _both(stores, lambda s: s.set_task_run_state(t2, Running(timestamp=dt.datetime(2024, 5, 1, 13, 0))))
    _both(stores, lambda s: s.set_task_run_state(t2, Scheduled(name="AwaitingRetry", timestamp=T0.astimezone(CET))))
    _both(stores, lambda s: s.set_task_run_state(t2, Running(name="Retrying", timestamp=T0 + dt.timedelta(minutes=5))))
    _both(stores, lambda s: s.set_task_run_state(t2, Failed(message="boom", timestamp=T0 + dt.timedelta(minutes=6))))
    # force: a final run moved on anyway.
    _both(stores, lambda s: s.set_task_run_state(t2, Running(timestamp=T0 + dt.timedelta(minutes=7)), force=True))
    _both(stores, lambda s: s.create_task_run(flow_id, "mod.c", "c", id=t3, states=[Scheduled(timestamp=T0)]))
    _both(stores, lambda s: s.set_task_run_state(t3, Cancelled(timestamp=T0)))
    # The cache: write, upsert, read (hit, expired, missing).
    _both(stores, lambda s: s.write_cache("a", {"v": 1}, None))
    _both(stores, lambda s: s.write_cache("a", {"v": 2, "when": T0}, dt.datetime(2999, 1, 1, tzinfo=dt.timezone.utc)))
    _both(stores, lambda s: s.write_cache("old", {"v": 3}, T0))
    assert _both(stores, lambda s: s.read_cache("a")) == {"v": 2, "when": T0.isoformat()}
    assert _both(stores, lambda s: s.read_cache("old")) is None
    assert _both(stores, lambda s: s.read_cache("missing")) is None

    # Log lines as the shipper hands them over (a fraction that rounds into the next second).
    rows = [(flow_id, t1, 20, "fleetflow.runs", "one", T0.timestamp()), (flow_id, None, 40, "x", "two", 1714564799.9999997)]
    _both(stores, lambda s: s.write_log_rows(rows))

    fast, core = stores
    fast_rows, core_rows = _dump(fast), _dump(core)
    assert fast_rows["task_runs"] and len(fast_rows["states"]) == 12 and len(fast_rows["logs"]) == 2
    for table in core_rows:
        assert fast_rows[table] == core_rows[table], table
    for run_id in (t1, t2, t3):
        assert fast.read_task_run_states(run_id) == core.read_task_run_states(run_id)
        _same(fast.read_task_run(run_id), core.read_task_run(run_id))


def test_same_errors_and_nothing_written(stores):
    flow_id, t1 = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    _both(stores, lambda s: s.create_flow_run("f", id=flow_id, name="r", state=Running(timestamp=T0)))
    _both(stores, lambda s: s.create_task_run(flow_id, "k", "t", id=t1, states=[Pending(timestamp=T0), Running(timestamp=T0)]))
    _both(stores, lambda s: s.set_task_run_state(t1, Completed(timestamp=T0)))
    before = [_dump(s) for s in stores]

    error = _both(stores, lambda s: s.set_task_run_state(t1, Running(timestamp=T0)))  # final -> anything
    assert isinstance(error, InvalidStateTransition) and (error.current, error.proposed) == ("COMPLETED", "RUNNING")
    assert isinstance(_both(stores, lambda s: s.set_task_run_state("nope", Running())), ObjectNotFound)
    assert isinstance(_both(stores, lambda s: s.create_task_run(flow_id, "k", "t", id=t1)), ObjectAlreadyExists)
    assert isinstance(_both(stores, lambda s: s.create_task_run("no-flow", "k", "t")), ObjectNotFound)
    # An invalid initial history is refused before any SQL.
    assert isinstance(_both(stores, lambda s: s.create_task_run(flow_id, "k", "t", states=[Completed(), Running()])), InvalidStateTransition)
    # Values the JSON serializer refuses: SQLAlchemy's StatementError on both paths.
    error = _both(stores, lambda s: s.set_task_run_state(t1, Completed(data={"x": object()}), force=True))
    assert isinstance(error, sa.exc.StatementError)
    assert isinstance(_both(stores, lambda s: s.write_cache("k", {"x": object()}, None)), sa.exc.StatementError)

    assert [_dump(s) for s in stores] == before  # every failed call rolled back
    # ... and the connection is usable afterwards (no transaction left open).
    _both(stores, lambda s: s.create_task_run(flow_id, "k", "t2", id=str(uuid.UUID(int=9)), states=[Pending(timestamp=T0)]))
    assert _dump(stores[0]) == _dump(stores[1])


def test_a_pending_run_cannot_complete_from_scheduled_on_the_fast_path(tmp_path: Path):
    store = Orchestrator.create(f"sqlite:///{tmp_path}/s.db")
    run = store.create_flow_run("f", state=Running())
    task = store.create_task_run(run.id, "k", "t", states=[Scheduled()])
    with pytest.raises(InvalidStateTransition, match="SCHEDULED run cannot move to COMPLETED"):
        store.set_task_run_state(task.id, Completed())
    assert [s.type.value for s in store.read_task_run_states(task.id)] == ["SCHEDULED"]
    store.dispose()


def test_threads_and_two_stores_on_one_file(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/t.db"
    a, b = Orchestrator.create(url), Orchestrator.create(url)
    run = a.create_flow_run("f", state=Running())
    errors: list[BaseException] = []

    def work(store: Orchestrator, n: int) -> None:
        try:
            for i in range(n):
                task = store.create_task_run(run.id, "k", "t", dynamic_key=str(i), states=[Pending(), Running()])
                done = store.set_task_run_state(task.id, Completed(data={"i": i}))
                assert done.state.data == {"i": i} and done.run_count == 1
                store.write_cache(task.id, {"i": i}, None)
                assert store.read_cache(task.id) == {"i": i}
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(store, 50)) for store in (a, b) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    tasks = b.read_task_runs(run.id)
    assert len(tasks) == 400 and {t.state.type.value for t in tasks} == {"COMPLETED"}
    assert all(len(a.read_task_run_states(t.id)) == 3 for t in tasks[:20])
    a.dispose()
    # A disposed store still works (it reconnects).
    task = a.create_task_run(run.id, "k", "after-dispose")
    assert a.set_task_run_state(task.id, Running()).run_count == 1
    a.dispose()
    b.dispose()


def _child(url: str, flow_run_id: str, store: Orchestrator | None) -> None:
    store = store or Orchestrator.create(url)
    for i in range(20):
        task = store.create_task_run(flow_run_id, "k", "child", dynamic_key=str(i), states=[Pending(), Running()])
        store.set_task_run_state(task.id, Completed())


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_processes_share_the_file(tmp_path: Path, method: str):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method")
    url = f"sqlite:///{tmp_path}/p.db"
    store = Orchestrator.create(url)
    run = store.create_flow_run("f", state=Running())
    _child(url, run.id, store)  # the parent's fast connection is open before forking
    ctx = multiprocessing.get_context(method)
    procs = [ctx.Process(target=_child, args=(url, run.id, store if method == "fork" else None)) for _ in range(3)]
    for proc in procs:
        proc.start()
    _child(url, run.id, store)  # and is still used while the children write
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    tasks = store.read_task_runs(run.id)
    assert len(tasks) == 100 and {t.state.type.value for t in tasks} == {"COMPLETED"}
    store.dispose()
