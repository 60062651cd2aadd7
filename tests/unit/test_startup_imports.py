"""What a ``python script.py`` flow imports on its way to the first task body, and what the
processes the test suite and every worker spawn by the thousand import: a launched run's
``python -m fleetflow.runner`` and a ``fleetflow worker start``.

Start-up time is a benchmark target (``benchmarks/engine_overhead.py`` measures it); these
tests pin the cause instead of the clock: a flow script on an existing SQLite store loads no
SQLAlchemy at all (the plain SQLite path, orchestrator/lite.py), no pydantic-settings, dotenv or
asyncio, no secret sealing, no retry machinery, nothing of the server, the HTTP client, the CLI
or AWS.
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
    "sqlalchemy",  # the plain SQLite path (orchestrator/lite.py) runs generated SQL on sqlite3
    "fleetflow.orchestrator.service",  # the SQLAlchemy store, and every area module of it
    "fleetflow.orchestrator.runs",
    "fleetflow.orchestrator.tables",
    "fleetflow.orchestrator.migrations",
    "fleetflow.orchestrator.keys",
    "asyncio",  # came with SQLAlchemy and pydantic-settings; a sync flow needs no event loop
    "ssl",
    "dotenv",  # only when a .env file is configured
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
    "botocore",
    "jsonpatch",  # ECS task customisations
    "typer",  # the CLI: typer, click and rich
    "click",
    "rich",
    "fleetflow.cli",
    "fleetflow.worker",
    "fleetflow.deployments",
    "fleetflow.infrastructure",
)

# A launched run needs the store, the engine and its storage block, nothing of what launches it.
NOT_IN_A_LOCAL_RUNNER = (
    "sqlalchemy.dialects.postgresql",
    "psycopg",
    "fleetflow.server",
    "fleetflow.client.http",
    "fleetflow.aws",  # its storage is a local-file-system block: no AWS room, no boto3
    "boto3",
    "jsonpatch",
    "fastapi",
    "httpx",
    "typer",
    "rich",
    "fleetflow.cli",
    "fleetflow.worker",
    "fleetflow.deployments",
)

# A worker of a Process pool on a SQLite store: the CLI, the worker and Process, no more.
NOT_IN_A_PROCESS_WORKER = (
    "sqlalchemy.dialects.postgresql",
    "psycopg",
    "fleetflow.server",
    "fleetflow.client.http",
    "fleetflow.aws",
    "boto3",
    "fastapi",
    "uvicorn",
    "jinja2",
    "httpx",
    "cryptography",
)


def _modules_at_first_task(tmp_path, env: dict[str, str]) -> list[str]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _loaded(modules: list[str], name: str) -> list[str]:
    return [m for m in modules if m == name or m.startswith(name + ".")]


def _none_loaded(modules: list[str], names: tuple[str, ...]) -> None:
    assert {name: _loaded(modules, name) for name in names} == {name: [] for name in names}


FLOW_FILE = textwrap.dedent(
    """
    import json, sys
    from fleetflow import flow

    @flow
    def report():
        print(json.dumps(sorted(sys.modules)), flush=True)
    """
)

DEPLOY = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from flows import report
    from fleetflow.client import get_client
    from fleetflow.deployments import Deployment
    from fleetflow.filesystems import LocalFileSystem

    LocalFileSystem(basepath=sys.argv[2]).save("code", overwrite=True)
    Deployment.build_from_flow(report, "d", storage=LocalFileSystem.load("code"), path=sys.argv[1]).apply()
    print(get_client().create_flow_run_from_deployment("report/d").id)
    """
)


def test_a_sqlite_flow_loads_only_what_its_first_task_needs(tmp_path):
    """On an existing store (the first run of a new one creates it through SQLAlchemy)."""
    import os

    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path / "home")}
    first = _modules_at_first_task(tmp_path, env)
    assert "sqlalchemy" in first  # created and migrated the store
    modules = _modules_at_first_task(tmp_path, env)
    assert "fleetflow.orchestrator.lite" in modules and "fleetflow.engine.task_engine" in modules
    _none_loaded(modules, NOT_ON_THE_SQLITE_PATH)


def _deployed(tmp_path) -> tuple[dict[str, str], str]:
    """FLOW_FILE deployed from a local folder by DEPLOY: the environment, and the id of the run it created."""
    import os

    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path / "home")}
    code = tmp_path / "code"
    code.mkdir()
    (code / "flows.py").write_text(FLOW_FILE)
    (tmp_path / "deploy.py").write_text(DEPLOY)
    made = subprocess.run([sys.executable, str(tmp_path / "deploy.py"), str(code), str(tmp_path / "storage")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert made.returncode == 0, made.stderr[-3000:]
    return env, made.stdout.strip().splitlines()[-1]


def test_a_launched_runner_loads_no_launcher_cli_or_aws(tmp_path):
    """``python -m fleetflow.runner <id>`` as a worker runs it: code bundled in a local folder."""
    env, run_id = _deployed(tmp_path)
    out = subprocess.run([sys.executable, "-m", "fleetflow.runner", run_id], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert "fleetflow.filesystems" in modules and "fleetflow.bundles" in modules  # it did fetch the bundle
    _none_loaded(modules, NOT_IN_A_LOCAL_RUNNER)


CALLS_A_DEPLOYMENT = textwrap.dedent(
    """
    import json, sys
    from fleetflow import flow, run_deployment

    @flow
    def parent():
        child = run_deployment("report/d", timeout=0)  # created, linked, not waited for
        print(json.dumps(sorted(sys.modules)), flush=True)
        return child.id

    parent()
    """
)


def test_a_flow_calling_run_deployment_loads_no_sqlalchemy(tmp_path):
    """A deployed parent runs forked from the fork server's template, which holds no
    SQLAlchemy: its ``run_deployment`` (the import, the checks, the linked child) stays on the
    plain SQLite path, or its first call would pay ~0.2 s of imports."""
    env, _ = _deployed(tmp_path)
    (tmp_path / "parent.py").write_text(CALLS_A_DEPLOYMENT)
    out = subprocess.run([sys.executable, str(tmp_path / "parent.py")], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert "fleetflow.orchestrator.deployment_runs" in modules  # it did create the child here
    _none_loaded(modules, ("sqlalchemy", "fleetflow.orchestrator.service", "fleetflow.worker.loop"))


def test_a_process_worker_loads_no_server_http_or_aws(tmp_path):
    """What ``fleetflow worker start`` imports before it serves a Process pool on SQLite."""
    import os

    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path / "home")}
    code = ("import json, sys; import fleetflow.cli, fleetflow.cli.workers, fleetflow.infrastructure; "
            "from fleetflow.worker import start_worker; "  # as the command imports it
            "from fleetflow.client import get_client; get_client(); print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert "fleetflow.worker.loop" in modules and "fleetflow.infrastructure.process" in modules
    _none_loaded(modules, NOT_IN_A_PROCESS_WORKER)


def test_each_builtin_block_type_is_found_in_its_own_module():
    """get_block_class imports only the module BUILTIN_BLOCK_MODULES names for a slug; every
    fleetflow block type must be listed there, under the module that defines it."""
    from fleetflow.blocks.base import BUILTIN_BLOCK_MODULES, block_types

    ours = {slug: cls.__module__ for slug, cls in block_types().items() if cls.__module__.startswith("fleetflow.")}
    assert sorted(ours) == sorted(BUILTIN_BLOCK_MODULES)
    wrong = {slug: (module, BUILTIN_BLOCK_MODULES[slug]) for slug, module in ours.items()
             if not (module == BUILTIN_BLOCK_MODULES[slug] or module.startswith(BUILTIN_BLOCK_MODULES[slug] + "."))}
    assert wrong == {}


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
