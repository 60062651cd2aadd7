"""What a ``python script.py`` flow imports on its way to the first task body.

Start-up time is a benchmark target (``benchmarks/engine_overhead.py`` measures it); this
test pins the cause instead of the clock: on a SQLite store, no PostgreSQL dialect or driver,
no secret sealing, no retry machinery, nothing of the server, the HTTP client or AWS is loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa

from fleetflow.orchestrator import Orchestrator

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from fleetflow import flow, task

    @task
    def first():
        print(json.dumps(sorted(sys.modules)), flush=True)

    @flow
    def f():
        first()

    f()
    """
)

NOT_ON_THE_SQLITE_PATH = (
    "sqlalchemy.dialects.postgresql",  # every PostgreSQL driver module comes with it
    "asyncpg",
    "psycopg",
    "cryptography",  # sealing secrets: only when a block with secrets is saved or loaded
    "tenacity",  # only tasks with retries, and async tasks
    "difflib",  # only "did you mean" hints
    "fleetflow.server",
    "fleetflow.client.http",
    "fleetflow.aws",
    "fastapi",
    "httpx",
    "boto3",
)


def _modules_at_first_task(tmp_path, env: dict[str, str]) -> list[str]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _loaded(modules: list[str], name: str) -> list[str]:
    return [m for m in modules if m == name or m.startswith(name + ".")]


def test_a_sqlite_flow_loads_only_what_its_first_task_needs(tmp_path):
    import os

    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path / "home")}
    modules = _modules_at_first_task(tmp_path, env)
    assert "sqlalchemy.dialects.sqlite" in modules and "fleetflow.engine.task_engine" in modules
    assert {name: _loaded(modules, name) for name in NOT_ON_THE_SQLITE_PATH} == {name: [] for name in NOT_ON_THE_SQLITE_PATH}


@pytest.mark.postgres
def test_a_postgres_flow_loads_the_postgres_dialect(tmp_path, pg_server):
    import os

    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path / "home"), "FLEETFLOW_DATABASE_URL": pg_server.fresh_database()}
    modules = _modules_at_first_task(tmp_path, env)
    assert "sqlalchemy.dialects.postgresql" in modules and "psycopg" in modules


def test_history_indexes_are_partial_on_each_dialect(store_url):
    """The WHERE of the history indexes is set for the dialect creating them (tables.py)."""
    store = Orchestrator.create(store_url)
    try:
        with store.engine.connect() as conn:
            if store.dialect_name == "sqlite":
                query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'states'"
            else:
                query = "SELECT indexdef FROM pg_indexes WHERE tablename = 'states' AND indexname LIKE 'ix_%'"
            ddl = sorted(conn.execute(sa.text(query)).scalars())
    finally:
        store.dispose()
    assert len(ddl) == 2, ddl
    for column, text in zip(("flow_run_id", "task_run_id"), ddl):
        assert column in text and f"{column} IS NOT NULL" in text.replace("(", "").replace(")", ""), text
