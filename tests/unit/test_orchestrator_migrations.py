"""Schema creation and upgrades, on every backend."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
import sqlalchemy as sa

from barrier import child_env

from fleetflow.exceptions import ConfigurationError
from fleetflow.orchestrator import Orchestrator, WorkPool, migrations, tables
from fleetflow.orchestrator.migrations import LATEST_VERSION, current_version, migrate

NOW = dt.datetime.now(dt.timezone.utc)


def _columns(engine: sa.Engine) -> dict[str, set[str]]:
    inspector = sa.inspect(engine)
    return {name: {c["name"] for c in inspector.get_columns(name)} for name in inspector.get_table_names()}


def test_fresh_store_matches_current_tables(orchestrator: Orchestrator):
    expected = {table.name: {c.name for c in table.columns} for table in tables.metadata.sorted_tables}
    assert _columns(orchestrator.engine) == expected
    with orchestrator.engine.connect() as conn:
        assert current_version(conn) == LATEST_VERSION
    assert migrate(orchestrator.engine) == LATEST_VERSION  # no-op when current


def test_upgrade_from_v1_keeps_data(store_url: str):
    old = Orchestrator.create(store_url, migrate=False)
    assert migrate(old.engine, target=1) == 1
    assert "workers" not in _columns(old.engine) and "last_polled" not in _columns(old.engine)["work_pools"]
    with old.engine.begin() as conn:  # v1's work_pools has no last_polled column, flow_runs no lease
        conn.execute(migrations._V1_WORK_POOLS.insert(), {"id": "p1", "name": "pool", "type": "process", "created": NOW})
        conn.execute(migrations._V1_FLOW_RUNS.insert(), {
            "id": "r1", "name": "old-run", "flow_name": "f", "state_type": "RUNNING", "state_name": "Running",
            "state_timestamp": NOW, "run_count": 1, "parameters": {}, "tags": [], "work_pool_name": "pool",
            "infra_overrides": {}, "infrastructure": {}, "created": NOW,
        })
    old.dispose()
    run = type("OldRun", (), {"id": "r1"})

    store = Orchestrator.create(store_url)
    with store.engine.connect() as conn:
        assert current_version(conn) == LATEST_VERSION
        versions = conn.execute(sa.select(tables.schema_migrations.c.version)).scalars().all()
    assert versions == list(range(1, LATEST_VERSION + 1))
    upgraded = store.read_flow_run(run.id)
    assert upgraded.state.type.value == "RUNNING"
    assert (upgraded.launch_attempt, upgraded.launch_token, upgraded.lease_owner, upgraded.lease_expires) == (0, None, None, None)
    pool = store.read_work_pool("pool")
    assert pool.id == "p1" and pool.last_polled is None
    store.worker_heartbeat("pool", "w")
    store.claim_flow_runs("pool", "w")
    assert store.read_work_pool("pool").last_polled is not None
    assert [w.name for w in store.read_workers("pool")] == ["w"]
    store.dispose()


def test_newer_schema_is_refused(orchestrator: Orchestrator, store_url: str):
    with orchestrator.engine.begin() as conn:
        conn.execute(tables.schema_migrations.insert(), {"version": 99, "name": "future", "applied_at": NOW})
    with pytest.raises(ConfigurationError) as info:
        Orchestrator.create(store_url)
    assert "newer" in str(info.value)


_MIGRATE_AND_WRITE = """
import sys
from barrier import FileBarrier
from fleetflow.orchestrator import Orchestrator
FileBarrier(sys.argv[2], 4, sys.argv[3]).arrive("start")  # all four open an empty store together
store = Orchestrator.create(sys.argv[1])
store.create_flow_run("f")
store.dispose()
"""


def test_processes_starting_together_migrate_once(store_url: str, tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", _MIGRATE_AND_WRITE, store_url, str(tmp_path), f"p{i}"], env=child_env(),
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
        for i in range(4)
    ]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    store = Orchestrator.create(store_url)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.schema_migrations)).scalar() == LATEST_VERSION
    assert len(store.read_flow_runs()) == 4
    store.dispose()


def test_unsupported_urls():
    with pytest.raises(ConfigurationError):
        Orchestrator.create("mysql://x@localhost/db")
    with pytest.raises(ConfigurationError) as info:
        Orchestrator.create("sqlite://")
    assert "in-memory" in str(info.value)


def test_pool_model_roundtrip_after_upgrade(orchestrator: Orchestrator):
    pool = orchestrator.create_work_pool(WorkPool(id="", name="p", description="d"))
    assert orchestrator.read_work_pool("p") == pool


def test_unreachable_store_names_the_setting(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        Orchestrator.create("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "FLEETFLOW_DATABASE_URL" in str(info.value) and "secret" not in str(info.value)
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(ConfigurationError):
        Orchestrator.create(f"sqlite:///{blocked}/store.db")  # parent is a file
