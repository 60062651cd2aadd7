"""`fleetflow work-pool`: create (block validation), ls, inspect, delete.

Runs against SQLite and PostgreSQL through the ``temp_store`` fixture.
"""

from __future__ import annotations

import json

from clihelpers import assert_one_line_error, invoke

from fleetflow.filesystems import LocalFileSystem
from fleetflow.states import Scheduled


def _save_process_block(name: str = "local") -> None:
    from fleetflow.infrastructure.process import Process

    Process().save(name)


def test_create_ls_inspect_delete(temp_store):
    _save_process_block()
    created = invoke("work-pool", "create", "cli-pool", "--infrastructure-block", "process/local")
    assert created.exit_code == 0, created.output
    assert "fleetflow worker start --pool cli-pool" in created.stdout
    assert temp_store.read_work_pool("cli-pool").infrastructure_block == "process/local"

    listed = invoke("work-pool", "ls")
    assert "cli-pool" in listed.stdout and "process/local" in listed.stdout and "never" in listed.stdout
    rows = json.loads(invoke("work-pool", "ls", "--json").stdout)
    assert [(r["name"], r["workers_alive"]) for r in rows] == [("cli-pool", 0)]

    temp_store.worker_heartbeat("cli-pool", "worker-a", hostname="box", pid=42)
    temp_store.create_flow_run("waits", state=Scheduled(), work_pool_name="cli-pool")
    inspected = invoke("work-pool", "inspect", "cli-pool")
    assert inspected.exit_code == 0, inspected.output
    assert "worker-a" in inspected.stdout and "box" in inspected.stdout and "SCHEDULED" in inspected.stdout
    data = json.loads(invoke("work-pool", "inspect", "cli-pool", "--json").stdout)
    assert data["runs_by_state"]["SCHEDULED"] == 1
    assert data["workers"][0]["alive"] is True
    assert json.loads(invoke("work-pool", "ls", "--json").stdout)[0]["workers_alive"] == 1

    assert invoke("work-pool", "delete", "cli-pool", input="n\n").exit_code == 1
    deleted = invoke("work-pool", "delete", "cli-pool", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert temp_store.read_work_pools() == []
    assert_one_line_error(invoke("work-pool", "inspect", "cli-pool"), "cli-pool")


def test_create_bare_block_name_and_overwrite(temp_store):
    _save_process_block("local")
    assert invoke("work-pool", "create", "p", "-b", "local").exit_code == 0
    assert temp_store.read_work_pool("p").infrastructure_block == "process/local"
    assert_one_line_error(invoke("work-pool", "create", "p"), "already exists")
    assert invoke("work-pool", "create", "p", "--overwrite").exit_code == 0
    assert temp_store.read_work_pool("p").infrastructure_block is None


def test_create_rejects_wrong_or_missing_block(temp_store):
    LocalFileSystem(basepath="/tmp/x").save("files")
    _save_process_block("local")
    wrong = invoke("work-pool", "create", "p", "-b", "local-file-system/files")
    assert_one_line_error(wrong, "'process' block")
    mismatched = invoke("work-pool", "create", "p", "--type", "ecs", "-b", "process/local")
    assert_one_line_error(mismatched, "'ecs-task' block")
    assert_one_line_error(invoke("work-pool", "create", "p", "-b", "process/absent"), "absent")
    assert_one_line_error(invoke("work-pool", "create", "p", "--type", "kubernetes"), "kubernetes")
    assert temp_store.read_work_pools() == []


def test_pause_and_resume(temp_store):
    from fleetflow.orchestrator.schemas import WorkPool

    temp_store.create_work_pool(WorkPool(id="", name="pp"))
    paused = invoke("work-pool", "pause", "pp")
    assert paused.exit_code == 0, paused.output
    assert "Paused work pool 'pp'" in paused.stdout and "fleetflow work-pool resume pp" in paused.stdout
    assert temp_store.read_work_pool("pp").is_paused is True
    assert "no worker claims its runs" in invoke("work-pool", "inspect", "pp").stdout
    assert json.loads(invoke("work-pool", "inspect", "pp", "--json").stdout)["work_pool"]["is_paused"] is True
    listed = invoke("work-pool", "ls")
    row = next(line for line in listed.stdout.splitlines() if "pp" in line and "PAUSED" not in line)
    assert "PAUSED" in listed.stdout and row.rstrip(" │|").endswith("yes"), listed.stdout
    assert json.loads(invoke("work-pool", "ls", "--json").stdout)[0]["is_paused"] is True

    resumed = invoke("work-pool", "resume", "pp")
    assert resumed.exit_code == 0, resumed.output
    assert "Resumed work pool 'pp'" in resumed.stdout
    assert temp_store.read_work_pool("pp").is_paused is False
    assert_one_line_error(invoke("work-pool", "pause", "nope"), "nope")
