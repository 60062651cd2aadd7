"""The plain SQLite path's launch operations (orchestrator/lite.py ``LaunchPathMixin``) against
the SQLAlchemy Core path: a launched run's claim, its reads of deployment, blocks and pool, its
usage record, and ``run_deployment``'s linked child and wait store the same rows byte for byte,
return equal models and raise the same errors -- without the plain store ever building its
full (SQLAlchemy) store for them."""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from fleetflow.exceptions import (
    BlockNotFound, ConfigurationError, ObjectNotFound, ParameterValidationError, StaleLaunch,
)
from fleetflow.orchestrator import SQLiteOrchestrator, sqlgen, sqlite_codecs
from fleetflow.orchestrator.lite import PlainSQLiteStore, open_store
from fleetflow.orchestrator.schemas import Deployment, WorkPool
from fleetflow.states import Completed, Running, StateType

T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)
TABLES = {"flow_runs": "id", "task_runs": "id", "states": "id", "flow_run_usage": "flow_run_id",
          "deployments": "id", "block_documents": "id", "work_pools": "id"}
PARENT = str(uuid.UUID(int=1))


class _FrozenDatetime:
    """``states.dt`` for these tests: every State made without a timestamp gets T0."""

    timezone = dt.timezone

    class datetime:
        @staticmethod
        def now(tz: Any = None) -> dt.datetime:
            return T0


class _Ids:
    """Deterministic ids, restarted before each store's call so both stores get the same ones."""

    def __init__(self) -> None:
        self.restart(0)

    def restart(self, start: int) -> None:
        self._next = itertools.count(start)

    def __call__(self) -> str:
        return str(uuid.UUID(int=next(self._next)))


def _setup(url: str) -> None:
    """The catalog both stores start from, written by the Core path."""
    store = SQLiteOrchestrator.create(url)
    try:
        store.save_block_document("local-file-system", "code", {"basepath": "/srv/code"})
        store.create_work_pool(WorkPool(id=str(uuid.UUID(int=900)), name="pool", type="process"))
        store.upsert_deployment(Deployment(
            id=str(uuid.UUID(int=901)), name="d", flow_name="f", entrypoint="flow.py:f",
            storage_block="local-file-system/code", bundle_digest="ab" * 32, work_pool_name="pool",
            parameters={"x": 1}, tags=["t"],
            parameter_schema={"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "string"}}},
        ))
        store.create_flow_run("parent", id=PARENT, name="p", state=Running(timestamp=T0))
    finally:
        store.dispose()


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from fleetflow import states
    from fleetflow.orchestrator import base, catalog, deployment_runs, leases, lite, runs, usage

    for module in (base, catalog, deployment_runs, leases, lite, runs, usage):
        monkeypatch.setattr(module, "utcnow", lambda: T0 + dt.timedelta(days=1))
    monkeypatch.setattr(states, "dt", _FrozenDatetime)
    monkeypatch.setattr(leases, "new_launch_token", lambda: "token-1")
    ids = _Ids()
    for module in (catalog, deployment_runs, lite, runs):
        monkeypatch.setattr(module, "new_id", ids)
    urls = [f"sqlite:///{tmp_path / name}" for name in ("plain.db", "core.db")]
    for url in urls:
        ids.restart(1000)
        _setup(url)
    plain, core = open_store(urls[0]), SQLiteOrchestrator.create(urls[1])
    worker = SQLiteOrchestrator.create(urls[0])  # the worker's own store on the plain store's file
    assert type(plain) is PlainSQLiteStore
    yield plain, core, ids, worker
    for store in (plain, core, worker):
        store.dispose()


def _both(stores: tuple[Any, Any, _Ids], call: Callable[[Any], Any], *, first_id: int = 100) -> Any:
    """``call`` on each store (the same ids for both): equal results, or the same error."""
    plain, core, ids = stores[:3]
    outcomes = []
    for store in (plain, core):
        ids.restart(first_id)
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
    if isinstance(a, list):
        assert [m.model_dump() for m in a] == [m.model_dump() for m in b]
    elif hasattr(a, "model_dump"):
        assert type(a) is type(b)
        assert a.model_dump() == b.model_dump() and a.model_fields_set == b.model_fields_set
    else:
        assert a == b
    return a


def _dump(path: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value as SQLite holds it, with its type."""
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


def test_a_launched_runs_path_stores_what_the_core_path_stores(stores):
    plain, core, ids, worker = stores
    # run_deployment: the parent's linking task run and the child, then an unlinked idempotent one.
    child = _both(stores, lambda s: s.create_flow_run_from_deployment(
        "f/d", parameters={"y": "a"}, parent_flow_run_id=PARENT, parent_dynamic_key="2", flow_run_name="child"))
    assert child.parent_flow_run_id == PARENT and child.parent_task_run_id is not None
    again = _both(stores, lambda s: s.create_flow_run_from_deployment(
        "f/d", parameters={"y": "a"}, parent_flow_run_id=PARENT, parent_dynamic_key="2"), first_id=200)
    assert again.id == child.id  # the same call again: the run it made, not a second one
    keyed = _both(stores, lambda s: s.create_flow_run_from_deployment(
        str(uuid.UUID(int=901)), idempotency_key="k", tags=["x"], flow_run_name="keyed",
        scheduled_time=T0 + dt.timedelta(hours=1)), first_id=300)
    assert keyed.parent_task_run_id is None and keyed.deployment_id == str(uuid.UUID(int=901))
    # The worker's claim (the Core path on both) and launch attempt, then the runner's claim.
    workers = (worker, core, ids)
    assert len(_both(workers, lambda s: s.claim_flow_runs("pool", "w", limit=10, lease_owner="worker:1"))) == 2
    assert _both(stores, lambda s: s.begin_launch_attempt(child.id, "someone-else", lease_seconds=30)) is None
    _both(stores, lambda s: s.begin_launch_attempt(child.id, "worker:1", lease_seconds=30))
    claimed = _both(stores, lambda s: s.claim_launch(child.id, "token-1", "process:h:1:2", lease_seconds=60,
                                                     handle="process:h:1:2"))
    assert claimed.state.type.value == "RUNNING" and claimed.lease_owner == "process:h:1:2"
    _both(stores, lambda s: s.read_deployment(child.deployment_id))
    # The worker's look at its runs each tick (and other filters, served by the full store below).
    for states in ([StateType.PENDING, StateType.RUNNING], [StateType.CANCELLING], []):
        _both(stores, lambda s: s.read_flow_runs(worker_name="w", state_types=states))
    assert len(_both(stores, lambda s: s.read_flow_runs(worker_name="w", state_types=iter(["PENDING", "RUNNING"])))) == 2
    assert len(_both(stores, lambda s: s.read_flow_runs(worker_name="w", state_types=[StateType.PENDING], limit=1))) == 1
    _both(stores, lambda s: s.read_deployment_by_name("f/d"))
    _both(stores, lambda s: s.read_block_document("local-file-system", "code"))
    _both(stores, lambda s: s.read_work_pool("pool"))
    _both(stores, lambda s: s.write_flow_run_usage(child.id, {"cpu_seconds": 0.5, "at": T0}))
    _both(stores, lambda s: s.write_flow_run_usage(child.id, {"cpu_seconds": 0.7}))  # replaces the record
    _both(stores, lambda s: s.set_flow_run_state(child.id, Completed(timestamp=T0 + dt.timedelta(seconds=3))))
    _both(stores, lambda s: s.wait_for_flow_run(child.id, timeout=5))
    assert _both(stores, lambda s: s._final_flow_runs([child.id, keyed.id, PARENT, "missing"])) == {child.id}
    assert _both(stores, lambda s: s._final_flow_runs([])) == set()
    assert plain.__dict__["_full"] is None  # all of the above without the full store
    assert len(_both(stores, lambda s: s.read_flow_runs(worker_name="w", state_types=["PENDING"], limit=None))) == 1
    assert len(_both(stores, lambda s: s.read_flow_runs(flow_name="f"))) == 2
    # The errors, as the Core path raises them.
    assert isinstance(_both(stores, lambda s: s.claim_launch(child.id, "token-1", "other", lease_seconds=5)), StaleLaunch)
    assert isinstance(_both(stores, lambda s: s.claim_launch(keyed.id, "token-1", "o", lease_seconds=5)), StaleLaunch)
    assert isinstance(_both(stores, lambda s: s.claim_launch("missing", "t", "o", lease_seconds=5)), ObjectNotFound)
    assert isinstance(_both(stores, lambda s: s.read_deployment("missing")), ObjectNotFound)
    assert isinstance(_both(stores, lambda s: s.read_deployment_by_name("f/nope")), ObjectNotFound)
    assert isinstance(_both(stores, lambda s: s.read_deployment_by_name("d")), ObjectNotFound)
    assert isinstance(_both(stores, lambda s: s.read_block_document("local-file-system", "nope")), BlockNotFound)
    assert isinstance(_both(stores, lambda s: s.read_work_pool("nope")), ObjectNotFound)
    assert isinstance(_both(stores, lambda s: s.write_flow_run_usage("missing", {})), ObjectNotFound)
    assert isinstance(_both(stores, lambda s: s.write_flow_run_usage(child.id, [1])), ConfigurationError)
    assert isinstance(_both(stores, lambda s: s.create_flow_run_from_deployment("f/d", parameters={"z": 1})),
                      ParameterValidationError)
    assert isinstance(_both(stores, lambda s: s.create_flow_run_from_deployment(
        "f/d", parent_flow_run_id="missing-parent"), first_id=400), ObjectNotFound)
    error = _both(stores, lambda s: s.write_flow_run_usage(keyed.id, {"x": object()}))
    assert isinstance(error, sa.exc.StatementError)

    plain_rows, core_rows = _dump(plain.database), _dump(core.engine.url.database)
    assert len(plain_rows["flow_runs"]) == 3 and len(plain_rows["task_runs"]) == 1 and plain_rows["flow_run_usage"]
    for table in TABLES:
        assert plain_rows[table] == core_rows[table], table


def test_a_boolean_column_binds_and_reads_as_sqlalchemy_does():
    dialect = sqlgen.dialect()
    impl = sa.Boolean().dialect_impl(dialect)
    bind, result = impl.bind_processor(dialect), impl.result_processor(dialect, None)
    for value in (None, True, False, 0, 1):
        assert sqlite_codecs.BIND["bool"](value) == bind(value)
        assert sqlite_codecs.RESULT["bool"](bind(value)) == result(bind(value))
    for bad in (2, "yes"):
        with pytest.raises((TypeError, ValueError)) as expected:
            bind(bad)
        with pytest.raises(expected.type, match=str(expected.value).replace("'", ".")):
            sqlite_codecs.BIND["bool"](bad)
