"""The engine's per-task shortcuts give what the general code gives: ids, states built
without validation, argument binding, the engine's log lines (stored and printed) and their
level filtering."""

from __future__ import annotations

import datetime as dt
import inspect
import io
import logging
import os
import re
import time
import uuid
from typing import Iterator

import pytest

from fleetflow import flow, task
from fleetflow.engine.ids import new_id
from fleetflow.engine.parameters import bind_call, call_with_parameters
from fleetflow.exceptions import ParameterValidationError
from fleetflow.orchestrator import transitions as tr
from fleetflow.settings import reset_settings
from fleetflow.states import State, StateType, new_state

T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)


def test_task_run_ids_are_increasing_uuid7_strings_and_a_forked_child_draws_its_own():
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(3000)]  # several refills of the random pool
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # one process's ids strictly increase: inserts append to the indexes
    for value in ids[:300] + ids[-300:]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after + 1  # its first 48 bits: the Unix time in ms
    tails = {value[-8:] for value in ids}
    assert len(tails) == len(ids)  # what the CLI shows of a task run tells them apart
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what it draws next, while the parent's pool still holds ids
        try:
            os.write(write, " ".join(new_id() for _ in range(50)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_ids = pipe.read().split()
    os.waitpid(pid, 0)
    parent_ids = [new_id() for _ in range(50)]
    assert len(child_ids) == 50 and not set(child_ids) & set(parent_ids)


def test_states_built_without_validation_behave_like_validated_ones():
    data = {"result": {"serializer": "json", "value": "2"}}
    fast = new_state(StateType.COMPLETED, "Completed", None, T0, data)
    validated = State(type=StateType.COMPLETED, timestamp=T0, data=data)
    assert fast == validated and fast.model_dump() == validated.model_dump()
    assert fast.model_dump_json() == validated.model_dump_json()
    assert (str(fast), repr(fast)) == (str(validated), repr(validated)) == ("Completed()", "Completed(type=COMPLETED)")
    assert fast.with_value(3).result() == 3 and fast.is_completed() and fast.is_final
    copy = fast.model_copy()
    assert copy == fast and copy._value == 3
    exc = ValueError("boom")
    failed = new_state(StateType.FAILED, "Failed", "ValueError: boom").with_exception(exc)
    assert failed.result(raise_on_failure=False) is exc
    assert failed.timestamp.tzinfo is dt.timezone.utc and failed.data == {}
    pending = new_state(StateType.PENDING, "Pending")
    assert pending.data == {} and pending.data is not new_state(StateType.PENDING, "Pending").data  # not shared
    pending.message = "changed"  # assignment works as on a validated model
    assert pending.model_dump()["message"] == "changed"


def _calls() -> list[tuple]:
    def two(a, b):
        return (a, b)

    def defaults(a, b=2):
        return (a, b)

    def starred(a, *rest, k=1, **more):
        return (a, rest, k, more)

    def keyword_only(a, *, k):
        return (a, k)

    def positional_only(a, /, b=2, *rest):
        return (a, b, rest)

    def only_kwargs(**more):
        return more

    return [
        (two, (1, 2), {}), (two, (1,), {"b": 2}), (two, (), {"a": 1, "b": 2}), (two, (1,), {}),
        (two, (1, 2, 3), {}), (two, (1,), {"a": 1}), (defaults, (1,), {}), (defaults, (1, 5), {}),
        (starred, (1, 2, 3), {"k": 4, "z": 5}), (starred, (1,), {}), (starred, (1,), {"more": 6}),
        (keyword_only, (1,), {"k": 2}), (keyword_only, (1, 2), {}),
        (positional_only, (1,), {}), (positional_only, (1, 3, 4, 5), {}), (only_kwargs, (), {"kwargs": 1, "x": 2}),
    ]


@pytest.mark.parametrize("fn, args, kwargs", _calls())
def test_binding_and_calling_match_inspect(fn, args, kwargs):
    try:
        expected = dict(inspect.signature(fn).bind(*args, **kwargs).arguments)
    except TypeError as exc:
        with pytest.raises(ParameterValidationError, match=re.escape(str(exc))):
            bind_call(fn, args, kwargs)
        return
    bound = bind_call(fn, args, kwargs)
    assert bound == expected and list(bound) == list(expected)
    assert call_with_parameters(fn, bound) == fn(*args, **kwargs)


@pytest.mark.parametrize("history", [
    ["PENDING", "RUNNING", "COMPLETED"],
    ["PENDING", "RUNNING", "SCHEDULED", "RUNNING", "FAILED"],
    ["SCHEDULED", "PENDING", "PAUSED", "RUNNING", "CANCELLING", "CANCELLED"],
    ["PENDING", "COMPLETED", "RUNNING"],
    ["RUNNING", "RUNNING"],
])
def test_columns_applied_one_state_at_a_time_equal_those_of_the_whole_history(history):
    states = [new_state(StateType(kind), kind.title(), f"m{i}", T0 + dt.timedelta(seconds=i), {"i": i})
              for i, kind in enumerate(history)]
    values = tr.initial_columns(states[:1])
    for n in range(1, len(states)):
        try:
            expected = tr.initial_columns(states[: n + 1])
        except Exception as exc:  # noqa: BLE001 - the step must be refused the same way
            with pytest.raises(type(exc), match=re.escape(str(exc))):
                tr.apply_columns(values, states[n - 1].type, states[n])
            return
        tr.apply_columns(values, states[n - 1].type, states[n])
        assert values == expected


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the run loggers' console handler prints, for this test."""
    from fleetflow.engine.logs import engine_logger

    engine_logger()  # sets the run loggers up (prints nothing)
    (handler,) = [h for h in logging.getLogger("fleetflow.runs").handlers if isinstance(h, logging.StreamHandler)]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_the_engine_lines_of_each_task_run_are_stored_and_printed(temp_store, console):
    @task
    def add(x, y):
        return x + y

    @flow
    def adds():
        return [add(i, 1) for i in range(3)] + [add.submit(5, 1).result()]

    assert adds() == [1, 2, 3, 6]
    run = temp_store.read_flow_runs(flow_name="adds")[0]
    names = {t.id: t.name for t in temp_store.read_task_runs(run.id)}
    logs = [(rec.task_run_id and names[rec.task_run_id], rec.level, rec.name, rec.message)
            for rec in temp_store.read_logs(flow_run_id=run.id)]
    expected = []
    for i in range(3):
        expected += [(None, logging.INFO, "fleetflow.runs", f"Created task run 'add-{i}' for task 'add'"),
                     (None, logging.INFO, "fleetflow.runs", f"Executing 'add-{i}' immediately..."),
                     (f"add-{i}", logging.INFO, "fleetflow.runs", "Finished in state Completed()")]
    expected += [(None, logging.INFO, "fleetflow.runs", "Created task run 'add-3' for task 'add'"),
                 (None, logging.INFO, "fleetflow.runs", "Submitted task run 'add-3' for execution."),
                 ("add-3", logging.INFO, "fleetflow.runs", "Finished in state Completed()")]
    assert logs[: len(expected)] == expected
    assert logs[-1][3] == "Finished in state Completed()" and logs[-1][0] is None  # the flow's own line
    stamps = [rec.timestamp for rec in temp_store.read_logs(flow_run_id=run.id)]
    assert all(s.tzinfo is not None for s in stamps) and stamps == sorted(stamps)
    printed = console.getvalue().splitlines()
    line = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| INFO    \| (Flow run '[a-z]+-[a-z]+'|Task run 'add-\d') - (.+)$")
    engine_lines = [m.group(2) for m in map(line.match, printed) if m]
    assert engine_lines[: len(expected)] == [message for *_, message in expected]


def test_the_logging_level_setting_filters_the_engine_lines(temp_store, monkeypatch: pytest.MonkeyPatch):
    @task
    def one():
        return 1

    @flow
    def quiet():
        return one()

    def messages() -> list[str]:
        run = temp_store.read_flow_runs(flow_name="quiet")[0]
        return [rec.message for rec in temp_store.read_logs(flow_run_id=run.id)]

    monkeypatch.setenv("FLEETFLOW_LOGGING_LEVEL", "WARNING")
    reset_settings()
    assert quiet() == 1
    assert messages() == []
    monkeypatch.setenv("FLEETFLOW_LOGGING_LEVEL", "INFO")
    reset_settings()
    assert quiet() == 1
    assert "Finished in state Completed()" in messages()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_stores_none_of_its_parents_queued_log_lines(orchestrator):
    """A task that forks (multiprocessing's default on Linux) must not store its parent's queued
    lines a second time, nor hang on a lock the parent's shipper thread held at the fork."""
    import threading

    from fleetflow.engine.logs import shipper

    run = orchestrator.create_flow_run("f", state=new_state(StateType.RUNNING, "Running"))
    with shipper._write_lock:  # the shipper thread cannot store the line before the fork
        shipper.add(orchestrator, (run.id, None, logging.INFO, "fleetflow.runs", "queued in the parent", time.time()))
        pid = os.fork()
        if pid == 0:  # the child: nothing of the parent's to store, and its flush returns
            code = 1
            try:
                queued = len(shipper._pending)
                flushing = threading.Thread(target=shipper.flush, daemon=True)
                flushing.start()
                flushing.join(10)
                code = 0 if queued == 0 and not flushing.is_alive() else 1
            finally:
                os._exit(code)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert done[0] == pid and os.waitstatus_to_exitcode(done[1]) == 0
    shipper.flush()
    assert [rec.message for rec in orchestrator.read_logs(flow_run_id=run.id)] == ["queued in the parent"]


def test_log_rows_are_stored_as_log_records_are(orchestrator):
    """The log shipper's batches (``write_log_rows``, tuples) store what ``write_logs`` does."""
    from fleetflow.orchestrator.schemas import LogRecord

    run = orchestrator.create_flow_run("f", state=new_state(StateType.RUNNING, "Running"))
    # Unix times with a fraction that rounds into the next second, and a far one.
    times = [T0.timestamp(), int(T0.timestamp()) + 0.9999996, 4102444800.000001, T0.timestamp() + 0.5]
    rows = [(run.id, None if i % 2 else str(uuid.UUID(int=i)), 10 * (i + 1), "fleetflow.runs", f"line {i}", t)
            for i, t in enumerate(times)]
    orchestrator.write_log_rows(rows)
    orchestrator.write_logs([
        LogRecord(flow_run_id=f, task_run_id=t, level=level, name=name, message=message,
                  timestamp=dt.datetime.fromtimestamp(when, dt.timezone.utc))
        for f, t, level, name, message, when in rows
    ])
    orchestrator.write_log_rows([])
    stored = [rec.model_dump(exclude={"id"}) for rec in orchestrator.read_logs(flow_run_id=run.id)]
    assert len(stored) == 8 and stored[:4] == stored[4:]
    assert [rec["message"] for rec in stored[:4]] == ["line 0", "line 1", "line 2", "line 3"]
    assert stored[1]["timestamp"] == dt.datetime.fromtimestamp(times[1], dt.timezone.utc)
