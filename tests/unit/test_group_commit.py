"""Group commit (orchestrator/group_commit.py) on SQLite and PostgreSQL: buffered task-run
records give the same answers, rows and errors as committing each write; they are committed
before any immediate write of the process (a flow run's final state above all), after the
window, or when the buffer is full; readers of this process see them at once."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa

from fleetflow.client.embedded import EmbeddedClient
from fleetflow.exceptions import InvalidStateTransition, ObjectAlreadyExists, ObjectNotFound
from fleetflow.orchestrator import Orchestrator
from fleetflow.settings import reset_settings
from fleetflow.states import Cancelled, Completed, Failed, Pending, Running, Scheduled, StateType, new_state
from waiting import wait_until

T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)
HOUR = 3600.0  # a window nothing reaches during a test: only the rules commit


def _url(backend: str, request: pytest.FixtureRequest, tmp_path, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / name}.db"
    return request.getfixturevalue("pg_server").fresh_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def url(backend: str, request: pytest.FixtureRequest, tmp_path) -> str:
    return _url(backend, request, tmp_path, "store")


def _buffered(url: str, window: float = HOUR, max_records: int = 1000) -> Orchestrator:
    store = Orchestrator.create(url)
    store.enable_group_commit(window, max_records)
    assert store.group_commit is not None
    return store


@pytest.fixture
def buffered_and_observer(url: str) -> Iterator[tuple[Orchestrator, Orchestrator]]:
    """A store with group commit, and a plain one on the same database standing for another
    process (its own connections: it sees only what is committed)."""
    buffered, observer = _buffered(url), Orchestrator.create(url)
    yield buffered, observer
    buffered.dispose()
    observer.dispose()


# ---- same answers as committing every write ---------------------------------------------------
def _dump(store: Orchestrator) -> dict[str, list[tuple[Any, ...]]]:
    with store.engine.connect() as conn:
        return {
            table: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}"))]
            for table, order in (("task_runs", "id"), ("states", "id"), ("flow_runs", "id"))
        }


def _history_by_run(dump: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """``_dump`` with each run's history in order but without the rows' ids: a settled run's
    change is written before the batch's new task runs (in its transaction), so ids across runs
    interleave differently than when each write commits."""
    runs: dict[Any, list[tuple[Any, ...]]] = {}
    for row in dump["states"]:
        runs.setdefault((row[1], row[2]), []).append(row[1:])
    return {**dump, "states": runs}


def _both(stores: tuple[Orchestrator, Orchestrator], call: Callable[[Orchestrator], Any]) -> Any:
    """The same call on both stores: equal results, or errors of one type and message."""
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
        if not isinstance(a, sa.exc.StatementError):  # the wrapped driver text differs by path
            assert str(a) == str(b)
    elif a is not None:
        assert a.model_dump() == b.model_dump()
    return a


@pytest.fixture
def buffered_and_plain(backend: str, request: pytest.FixtureRequest, tmp_path, monkeypatch: pytest.MonkeyPatch):
    from fleetflow.orchestrator import runs

    monkeypatch.setattr(runs, "utcnow", lambda: T0)  # equal ``created`` columns in both databases
    buffered = _buffered(_url(backend, request, tmp_path, "buffered"))
    plain = Orchestrator.create(_url(backend, request, tmp_path, "plain"))
    yield buffered, plain
    buffered.dispose()
    plain.dispose()


def test_same_results_rows_and_errors_as_one_commit_per_write(buffered_and_plain):
    stores = buffered_and_plain
    flow_id, t1, t2, t3 = (str(uuid.UUID(int=i)) for i in range(1, 5))
    _both(stores, lambda s: s.create_flow_run("f", id=flow_id, name="r", state=Running(timestamp=T0)))
    _both(stores, lambda s: s.create_task_run(flow_id, "m.a", "a", id=t1, dynamic_key="3",
                                              states=[Pending(timestamp=T0, message="w"), Running(timestamp=T0)]))
    _both(stores, lambda s: s.create_task_run(flow_id, "m.b", "b", id=t2, cache_key="ck", states=[Pending(timestamp=T0)]))
    _both(stores, lambda s: s.set_task_run_state(t1, Completed(timestamp=T0 + dt.timedelta(seconds=2),
                                                               data={"result": {"at": T0, "pair": (1, 2)}})))
    # Retries: run_count and start_time as the conditional UPDATE computes them.
    _both(stores, lambda s: s.set_task_run_state(t2, Running(timestamp=T0 + dt.timedelta(minutes=1))))
    _both(stores, lambda s: s.set_task_run_state(t2, Scheduled(name="AwaitingRetry", timestamp=T0 + dt.timedelta(minutes=2))))
    _both(stores, lambda s: s.set_task_run_state(t2, Running(name="Retrying", timestamp=T0 + dt.timedelta(minutes=3))))
    _both(stores, lambda s: s.set_task_run_state(t2, Failed(message="boom", timestamp=T0 + dt.timedelta(minutes=4))))
    # Refused in the buffer exactly as in the database.
    error = _both(stores, lambda s: s.set_task_run_state(t1, Running(timestamp=T0)))
    assert isinstance(error, InvalidStateTransition) and (error.current, error.proposed) == ("COMPLETED", "RUNNING")
    assert isinstance(_both(stores, lambda s: s.create_task_run(flow_id, "k", "t", id=t1)), ObjectAlreadyExists)
    assert isinstance(_both(stores, lambda s: s.create_task_run("no-flow", "k", "t")), ObjectNotFound)
    for store in stores:  # data JSON cannot hold: refused now (the driver's own error type differs by dialect)
        with pytest.raises((sa.exc.StatementError, TypeError)):
            store.set_task_run_state(t2, Completed(data={"x": object()}))
    assert isinstance(_both(stores, lambda s: s.set_task_run_state("nope", Running())), ObjectNotFound)
    # force is written at once, after what is buffered.
    _both(stores, lambda s: s.set_task_run_state(t2, Running(timestamp=T0 + dt.timedelta(minutes=5)), force=True))
    _both(stores, lambda s: s.create_task_run(flow_id, "m.c", "c", id=t3, states=[Scheduled(timestamp=T0)]))
    _both(stores, lambda s: s.set_task_run_state(t3, Cancelled(timestamp=T0)))

    buffered, plain = stores
    buffered.flush_writes()
    rows, expected = _dump(buffered), _dump(plain)
    assert len(rows["states"]) == 12
    assert rows == expected
    for run_id in (t1, t2, t3):
        assert buffered.read_task_run_states(run_id) == plain.read_task_run_states(run_id)


def test_plain_and_json_converted_state_data_read_back_as_stored(buffered_and_plain):
    """Data JSON holds as it is (the engine's result references) and data it converts (tuples,
    datetimes, floats) come back from the buffer as they come back from the database."""
    stores = buffered_and_plain
    flow_id = str(uuid.UUID(int=1))
    _both(stores, lambda s: s.create_flow_run("f", id=flow_id, name="r", state=Running(timestamp=T0)))
    cases = [{"result": {"serializer": "json", "value": "2"}}, {"n": None, "ok": True, "l": [1, "a", {"k": []}]},
             {"pair": (1, 2), "at": T0, "x": 1.5}, {"deep": [[[[[[1]]]]]]}]
    for i, data in enumerate(cases):
        run_id = str(uuid.UUID(int=10 + i))
        _both(stores, lambda s: s.create_task_run(flow_id, "k", "t", id=run_id, dynamic_key=str(i),
                                                  states=[Pending(timestamp=T0), new_state(StateType.RUNNING, "Running", None, T0, data)]))
        # Built as the engine builds its states (no validation).
        done = _both(stores, lambda s: s.set_task_run_state(run_id, new_state(StateType.COMPLETED, "Completed", None, T0, data)))
        assert done.state.data == stores[1].read_task_run(run_id).state.data
    buffered, plain = stores
    buffered.flush_writes()
    assert _dump(buffered) == _dump(plain)


def test_recording_a_state_stores_what_setting_it_stores(buffered_and_plain):
    """``record_task_run_state`` (the engine's, returns nothing) against ``set_task_run_state``:
    buffered on one store, committed at once on the other; the same rows and refusals."""
    buffered, plain = buffered_and_plain
    flow_id, buffered_run, committed_run = (str(uuid.UUID(int=i)) for i in range(1, 4))
    for store in (buffered, plain):
        store.create_flow_run("f", id=flow_id, name="r", state=Running(timestamp=T0))
        for run_id in (buffered_run, committed_run):
            store.create_task_run(flow_id, "k", "t", id=run_id, dynamic_key=run_id[-1],
                                  states=[Pending(timestamp=T0), Running(timestamp=T0)])
    buffered.flush_writes()  # committed_run's creation is committed ("settled"): its changes buffer too
    buffered.create_task_run(flow_id, "k", "t", id=str(uuid.UUID(int=9)), states=[Pending(timestamp=T0)])
    plain.create_task_run(flow_id, "k", "t", id=str(uuid.UUID(int=9)), states=[Pending(timestamp=T0)])
    done = Completed(timestamp=T0, data={"result": {"serializer": "json", "value": "1"}})
    for run_id in (committed_run, str(uuid.UUID(int=9))):
        assert buffered.record_task_run_state(run_id, done) is None
        plain.set_task_run_state(run_id, done)
    for store in (buffered, plain):
        with pytest.raises(InvalidStateTransition):
            store.record_task_run_state(committed_run, Running(timestamp=T0))
        with pytest.raises(ObjectNotFound):
            store.record_task_run_state("nope", done)
    buffered.flush_writes()
    assert _history_by_run(_dump(buffered)) == _history_by_run(_dump(plain))


# ---- when buffered records are committed --------------------------------------------------------
def _flow_with_tasks(store: Orchestrator, n: int) -> tuple[str, list[str]]:
    run = store.create_flow_run("f", state=Running())
    ids = []
    for i in range(n):
        task = store.create_task_run(run.id, "k", f"t-{i}", dynamic_key=str(i), states=[Pending(), Running()])
        store.set_task_run_state(task.id, Completed(data={"result": i}))
        ids.append(task.id)
    return run.id, ids


def test_a_flow_runs_final_state_commits_its_task_runs_first(buffered_and_observer):
    buffered, observer = buffered_and_observer
    flow_id, ids = _flow_with_tasks(buffered, 5)
    assert observer.read_task_runs(flow_id) == []  # still buffered: no other process sees them
    buffered.set_flow_run_state(flow_id, Completed())
    seen = observer.read_task_runs(flow_id)
    assert [t.id for t in seen] == ids
    assert all(t.state.type.value == "COMPLETED" and t.run_count == 1 and t.end_time for t in seen)
    assert [s.type.value for s in observer.read_task_run_states(ids[0])] == ["PENDING", "RUNNING", "COMPLETED"]


def test_readers_in_this_process_see_buffered_records(buffered_and_observer):
    buffered, observer = buffered_and_observer
    flow_id, ids = _flow_with_tasks(buffered, 3)
    assert [t.id for t in buffered.read_task_runs(flow_id)] == ids
    assert buffered.read_task_run(ids[1]).state.data == {"result": 1}
    assert len(observer.read_task_runs(flow_id)) == 3  # reading committed them


def _settled_run(buffered: Any) -> tuple[str, str]:
    """A flow run with one RUNNING task run whose creation a group commit already wrote."""
    run = buffered.create_flow_run("f", state=Running())
    task = buffered.create_task_run(run.id, "k", "t", states=[Pending(), Running()])
    buffered.flush_writes()
    return run.id, task.id


def _plain_buffered(tmp_path: Any) -> tuple[Any, Orchestrator]:
    from fleetflow.orchestrator.lite import PlainSQLiteStore, open_store

    url = f"sqlite:///{tmp_path / 'plain.db'}"
    Orchestrator.create(url).dispose()
    store = open_store(url)
    assert type(store) is PlainSQLiteStore
    store.enable_group_commit(HOUR, 1000)
    return store, Orchestrator.create(url)


def _next_change_is_buffered_too_and_commits_with_its_history(buffered: Any, observer: Orchestrator, caplog: Any) -> None:
    _, task_id = _settled_run(buffered)
    assert observer.read_task_run(task_id).state.type is StateType.RUNNING
    assert buffered.record_task_run_state(task_id, Completed(data={"result": {"serializer": "json", "value": "1"}})) is None
    assert observer.read_task_run(task_id).state.type is StateType.RUNNING  # in the buffer, not committed
    buffered.flush_writes()
    stored = observer.read_task_run(task_id)
    assert stored.state.type is StateType.COMPLETED and stored.end_time is not None
    assert stored.state.data == {"result": {"serializer": "json", "value": "1"}}
    assert [s.type for s in observer.read_task_run_states(task_id)] == [StateType.PENDING, StateType.RUNNING,
                                                                          StateType.COMPLETED]


def _checked_in_memory_as_the_update_would(buffered: Any, observer: Orchestrator, caplog: Any) -> None:
    _, task_id = _settled_run(buffered)
    with pytest.raises(InvalidStateTransition):
        buffered.set_task_run_state(task_id, Pending())
    buffered.set_task_run_state(task_id, Completed())
    with pytest.raises(InvalidStateTransition):  # final: no longer buffered, refused by the store itself
        buffered.set_task_run_state(task_id, Running())


def _a_change_made_elsewhere_meanwhile_wins_and_the_refusal_is_logged(buffered: Any, observer: Orchestrator,
                                                                     caplog: Any) -> None:
    _, task_id = _settled_run(buffered)
    observer.set_task_run_state(task_id, Cancelled(), force=True)  # another process, committed first
    buffered.record_task_run_state(task_id, Completed())  # valid against what this process knows
    with caplog.at_level(logging.ERROR, logger="fleetflow.store"):
        buffered.flush_writes()
    assert observer.read_task_run(task_id).state.type is StateType.CANCELLED
    assert "was not recorded: another process changed the run meanwhile" in caplog.text
    history = [s.type for s in observer.read_task_run_states(task_id)]
    assert history[-1] is StateType.CANCELLED and StateType.COMPLETED not in history


def _a_forced_change_is_immediate_and_ends_the_buffering_of_that_run(buffered: Any, observer: Orchestrator,
                                                                     caplog: Any) -> None:
    _, task_id = _settled_run(buffered)
    buffered.set_task_run_state(task_id, Failed(), force=True)
    assert observer.read_task_run(task_id).state.type is StateType.FAILED
    buffered.set_task_run_state(task_id, Running(), force=True)
    buffered.set_task_run_state(task_id, Completed())  # not settled any more: committed at once
    assert observer.read_task_run(task_id).state.type is StateType.COMPLETED


def _fail_updates_to_completed(observer: Orchestrator, on: bool) -> None:
    """A real fault in the database (not a constraint): a trigger that makes the UPDATE of a
    task run to COMPLETED fail, as a lost connection or a full disk would, or removes it."""
    sqlite = observer.engine.dialect.name == "sqlite"
    with observer.engine.begin() as conn:
        if not on:
            conn.execute(sa.text("DROP TRIGGER injected_fault" + ("" if sqlite else " ON task_runs")))
        elif sqlite:  # fails while the UPDATE runs (OperationalError, not a constraint)
            conn.execute(sa.text("CREATE TRIGGER injected_fault BEFORE UPDATE ON task_runs "
                                 "WHEN NEW.state_type = 'COMPLETED' BEGIN SELECT json('injected fault'); END"))
        else:
            conn.execute(sa.text("CREATE FUNCTION injected_fault() RETURNS trigger AS "
                                 "$$ BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql"))
            conn.execute(sa.text("CREATE TRIGGER injected_fault BEFORE UPDATE ON task_runs FOR EACH ROW "
                                 "WHEN (NEW.state_type = 'COMPLETED') EXECUTE FUNCTION injected_fault()"))


def _a_settled_change_and_the_next_creations_commit_together_or_not_at_all(buffered: Any, observer: Orchestrator,
                                                                          caplog: Any) -> None:
    """Call order across a batch: the settled task completes, then the next one runs. Were the
    UPDATE and the INSERTs committed apart, a failure (or a kill) between them would leave the
    later task COMPLETED and the earlier still RUNNING."""
    flow_run_id, first = _settled_run(buffered)
    buffered.record_task_run_state(first, Completed())
    second = buffered.create_task_run(flow_run_id, "k2", "t", states=[Pending(), Running(), Completed()])
    _fail_updates_to_completed(observer, True)
    with pytest.raises(Exception):
        buffered.flush_writes()
    assert observer.read_task_run(first).state.type is StateType.RUNNING
    assert [t.id for t in observer.read_task_runs(flow_run_id)] == [first]  # the second is not there either
    _fail_updates_to_completed(observer, False)
    buffered.flush_writes()  # the batch was kept: it commits whole now
    assert observer.read_task_run(first).state.type is StateType.COMPLETED
    assert observer.read_task_run(second.id).state.type is StateType.COMPLETED


SETTLED = [_next_change_is_buffered_too_and_commits_with_its_history, _checked_in_memory_as_the_update_would,
           _a_change_made_elsewhere_meanwhile_wins_and_the_refusal_is_logged,
           _a_forced_change_is_immediate_and_ends_the_buffering_of_that_run,
           _a_settled_change_and_the_next_creations_commit_together_or_not_at_all]


@pytest.mark.parametrize("scenario", SETTLED, ids=lambda f: f.__name__.strip("_"))
def test_settled_task_runs_on_the_store(buffered_and_observer, scenario, caplog):
    """A task run whose creation a group commit wrote (a submitted task outliving the window)."""
    scenario(*buffered_and_observer, caplog)


@pytest.mark.parametrize("scenario", SETTLED, ids=lambda f: f.__name__.strip("_"))
def test_settled_task_runs_on_the_plain_sqlite_path(tmp_path, scenario, caplog):
    buffered, observer = _plain_buffered(tmp_path)
    try:
        scenario(buffered, observer, caplog)
    finally:
        buffered.dispose()
        observer.dispose()


def test_the_window_commits_in_the_background(url):
    buffered, observer = _buffered(url, window=0.05), Orchestrator.create(url)
    try:
        flow_id, ids = _flow_with_tasks(buffered, 2)
        wait_until(lambda: len(observer.read_task_runs(flow_id)) == 2, "the window's commit",
                   observe=lambda: observer.read_task_runs(flow_id))
    finally:
        buffered.dispose()
        observer.dispose()


def test_a_full_buffer_commits_before_the_window(url):
    buffered, observer = _buffered(url, window=HOUR, max_records=6), Orchestrator.create(url)
    try:
        flow_id, _ = _flow_with_tasks(buffered, 2)  # 6 state records
        wait_until(lambda: len(observer.read_task_runs(flow_id)) == 2, "the commit of a full buffer",
                   observe=lambda: observer.read_task_runs(flow_id))
    finally:
        buffered.dispose()
        observer.dispose()


def test_dispose_commits_the_buffer(url):
    buffered, observer = _buffered(url), Orchestrator.create(url)
    flow_id, _ = _flow_with_tasks(buffered, 2)
    buffered.dispose()
    try:
        assert len(observer.read_task_runs(flow_id)) == 2
    finally:
        observer.dispose()


def test_a_deleted_flow_run_costs_only_its_own_records(buffered_and_observer, caplog):
    buffered, observer = buffered_and_observer
    gone, kept = (buffered.create_flow_run("f", state=Running()).id for _ in range(2))
    for flow_id in (gone, kept):
        for i in range(2):
            buffered.create_task_run(flow_id, "k", f"t-{i}", dynamic_key=str(i))
    observer.delete_flow_run(gone)  # another process deletes it while its task runs are buffered
    with caplog.at_level(logging.ERROR, logger="fleetflow.store"):
        buffered.flush_writes()
    assert [t.name for t in observer.read_task_runs(kept)] == ["t-0", "t-1"]
    assert "could not be recorded" in caplog.text and gone in caplog.text


def test_window_zero_commits_every_write(url):
    store = Orchestrator.create(url)
    store.enable_group_commit(0)
    observer = Orchestrator.create(url)
    try:
        assert store.group_commit is None
        flow_id, _ = _flow_with_tasks(store, 1)
        assert len(observer.read_task_runs(flow_id)) == 1
    finally:
        store.dispose()
        observer.dispose()


def test_the_embedded_client_takes_the_window_from_the_settings(url, monkeypatch: pytest.MonkeyPatch):
    client = EmbeddedClient.create(url)
    try:
        assert client.store.group_commit is not None and client.store.group_commit.window == 0.02
    finally:
        client.close()
    monkeypatch.setenv("FLEETFLOW_GROUP_COMMIT_WINDOW", "0")
    reset_settings()
    client = EmbeddedClient.create(url)
    try:
        assert client.store.group_commit is None
    finally:
        client.close()


# ---- the buffer itself: a batch in flight, and one that could not be committed ----------------
def _buffer_with_running_run() -> tuple[Any, str]:
    from fleetflow.orchestrator import transitions as tr
    from fleetflow.orchestrator.group_commit import TaskRunBuffer

    buffer = TaskRunBuffer()
    run_id = str(uuid.UUID(int=42))
    states = [Pending(timestamp=T0), Running(timestamp=T0)]
    values = {"id": run_id, "flow_run_id": str(uuid.UUID(int=1)), **tr.initial_columns(states)}
    buffer.add_created(values, states, tr.history_rows(states, task_run_id=run_id))
    return buffer, run_id


def test_a_change_while_its_creation_commits_waits_behind_it():
    buffer, run_id = _buffer_with_running_run()
    in_flight = buffer.take()
    assert in_flight.rows[0]["state_type"] == "RUNNING" and run_id in buffer
    buffer.add_transition(run_id, Completed(timestamp=T0))
    assert in_flight.rows[0]["state_type"] == "RUNNING"  # what is being written is not touched
    after = buffer.take()
    assert not after.runs and [(i, s.type) for i, s in after.updates] == [(run_id, StateType.COMPLETED)]


def test_a_batch_put_back_takes_the_changes_made_meanwhile_as_if_buffered_with_it():
    buffer, run_id = _buffer_with_running_run()
    failed = buffer.take()
    buffer.add_transition(run_id, Completed(timestamp=T0))  # while the failing commit ran
    buffer.restore(failed)
    retry = buffer.take()
    assert not retry.updates
    assert retry.rows[0]["state_type"] == "COMPLETED" and retry.rows[0]["end_time"] is not None
    assert [h["type"] for h in retry.history] == ["PENDING", "RUNNING", "COMPLETED"]
