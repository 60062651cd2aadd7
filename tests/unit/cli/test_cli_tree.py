"""The run tree (`flow-run inspect --tree`, reused by the flagship example).

Runs against SQLite and PostgreSQL through the ``temp_store`` fixture.
"""

from __future__ import annotations

import json

from clihelpers import invoke
from rich.console import Console

from fleetflow import flow
from fleetflow.cli.tree import render_run_tree, run_tree_rows

ARN = "arn:aws:ecs:us-east-1:123456789012:task/fleet/0123456789abcdef0123456789abcdef"


def _pipeline(temp_store):
    @flow
    def leaf(n: int):
        return n

    @flow
    def branch(n: int):
        return leaf(n) * 10

    @flow
    def root():
        return branch(1) + leaf(2)

    assert root() == 12
    return temp_store.read_flow_runs(flow_name="root")[0]


def test_rows_are_depth_first_with_infrastructure(temp_store):
    root = _pipeline(temp_store)
    branch = temp_store.read_flow_runs(flow_name="branch")[0]
    temp_store.update_flow_run(branch.id, infrastructure={"kind": "ecs", "cpu": 1024, "memory": 2048}, infrastructure_pid=ARN)

    rows = run_tree_rows(temp_store, root.id)
    assert [(r["flow_name"], r["depth"]) for r in rows] == [("root", 0), ("branch", 1), ("leaf", 2), ("leaf", 1)]
    assert all(r["state"] == "COMPLETED" for r in rows)
    ecs = rows[1]
    assert (ecs["infrastructure_kind"], ecs["cpu"], ecs["memory"], ecs["handle"]) == ("ecs", 1024, 2048, "task 01234567")
    assert rows[2]["parent_flow_run_id"] == ecs["id"]


def test_render_shows_parent_and_two_children(temp_store):
    root = _pipeline(temp_store)
    branch = temp_store.read_flow_runs(flow_name="branch")[0]
    temp_store.update_flow_run(branch.id, infrastructure={"kind": "ecs", "cpu": 1024, "memory": 2048}, infrastructure_pid=ARN)

    console = Console(record=True, width=200)
    console.print(render_run_tree(temp_store, root.id))
    text = console.export_text()
    lines = text.splitlines()
    assert "(root)" in lines[0] and "(branch)" in lines[1] and "(leaf)" in lines[2] and "(leaf)" in lines[3]
    assert "ecs cpu 1024 / mem 2048" in lines[1] and "task 01234567" in lines[1]
    assert lines[2].startswith("│   └── ")  # grandchild nests under the branch

    cli = invoke("flow-run", "inspect", root.id[:8], "--tree")
    assert cli.exit_code == 0 and "(branch)" in cli.stdout and "(leaf)" in cli.stdout
    data = json.loads(invoke("flow-run", "inspect", root.id, "--tree", "--json").stdout)
    assert [r["depth"] for r in data] == [0, 1, 2, 1]
