"""`fleetflow flow-run`: ls, inspect (prefixes, history, worker warning), logs, cancel.

Runs against SQLite and PostgreSQL through the ``temp_store`` fixture.
"""

from __future__ import annotations

import json

from clihelpers import assert_one_line_error, invoke

from fleetflow import flow, get_run_logger, task
from fleetflow.states import Completed, Running, Scheduled, StateType


def _run_simple_flow(temp_store):
    @task
    def double(x: int) -> int:
        get_run_logger().info("doubling %s", x)
        return 2 * x

    @flow
    def cli_adder(x: int = 3):
        get_run_logger().info("hello from the flow")
        return double(x) + 1

    assert cli_adder(4) == 9
    return temp_store.read_flow_runs(flow_name="cli-adder")[0]


def test_ls_shows_run_and_state(temp_store):
    run = _run_simple_flow(temp_store)
    result = invoke("flow-run", "ls")
    assert result.exit_code == 0, result.output
    assert run.id[:8] in result.stdout
    assert run.name in result.stdout and "cli-adder" in result.stdout
    assert "COMPLETED" in result.stdout


def test_ls_json_has_full_ids_and_filters(temp_store):
    run = _run_simple_flow(temp_store)
    temp_store.create_flow_run("other", state=Scheduled())
    data = json.loads(invoke("flow-run", "ls", "--json").stdout)
    assert {r["flow_name"] for r in data} == {"cli-adder", "other"}
    assert run.id in {r["id"] for r in data}

    only_flow = json.loads(invoke("flow-run", "ls", "--json", "--flow", "cli-adder").stdout)
    assert [r["id"] for r in only_flow] == [run.id]
    scheduled = json.loads(invoke("flow-run", "ls", "--json", "--state", "scheduled").stdout)
    assert [r["flow_name"] for r in scheduled] == ["other"]
    assert json.loads(invoke("flow-run", "ls", "--json", "--limit", "1").stdout)[0]["flow_name"] == "other"


def test_ls_rejects_unknown_state(temp_store):
    result = invoke("flow-run", "ls", "--state", "sleepy")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_inspect_shows_history_in_order_parameters_and_task_runs(temp_store):
    run = _run_simple_flow(temp_store)
    result = invoke("flow-run", "inspect", run.id[:8])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert run.id in out
    history = out[out.index("state history") :]
    positions = [history.index(t) for t in ("PENDING", "RUNNING", "COMPLETED")]
    assert positions == sorted(positions)
    assert '"x": 4' in out  # parameters
    assert "double" in out  # task runs table
    assert "in-process" in out  # infrastructure kind of a plain call


def test_inspect_tells_task_runs_apart_by_the_random_end_of_their_ids(temp_store):
    @task
    def step(i: int) -> int:
        return i

    @flow
    def many_steps():
        return [step(i) for i in range(5)]

    many_steps()
    run = temp_store.read_flow_runs(flow_name="many-steps")[0]
    task_runs = temp_store.read_task_runs(run.id)
    out = invoke("flow-run", "inspect", run.id[:8]).stdout
    shown = {tr.id[-8:] for tr in task_runs if tr.id[-8:] in out}
    assert len(shown) == 5  # time-ordered ids share their first characters (engine/ids.py)


def test_inspect_json(temp_store):
    run = _run_simple_flow(temp_store)
    data = json.loads(invoke("flow-run", "inspect", run.id, "--json").stdout)
    assert data["flow_run"]["id"] == run.id
    assert [s["type"] for s in data["states"]] == ["PENDING", "RUNNING", "COMPLETED"]
    assert [t["name"] for t in data["task_runs"]][0].startswith("double")


def test_unknown_and_ambiguous_ids_are_one_line_errors(temp_store):
    for suffix in ("1", "2"):
        temp_store.create_flow_run("twins", id=f"abcdef00-0000-4000-8000-00000000000{suffix}")
    unknown = invoke("flow-run", "inspect", "ffffffff")
    assert_one_line_error(unknown, "ffffffff")
    ambiguous = invoke("flow-run", "inspect", "abcdef")
    assert_one_line_error(ambiguous, "matches 2", "abcdef00-0000-4000-8000-000000000001")
    unique = invoke("flow-run", "inspect", "abcdef00-0000-4000-8000-000000000002", "--json")
    assert json.loads(unique.stdout)["flow_run"]["flow_name"] == "twins"
    assert_one_line_error(invoke("flow-run", "logs", "nope"), "nope")
    assert_one_line_error(invoke("flow-run", "cancel", "nope"), "nope")


def test_inspect_warns_when_no_worker_polls_the_pool(temp_store):
    from fleetflow.orchestrator.schemas import WorkPool

    run = temp_store.create_flow_run("waiting", state=Scheduled(), work_pool_name="cli-pool")
    missing = invoke("flow-run", "inspect", run.id)
    assert missing.exit_code == 0 and "does not exist" in missing.stderr

    temp_store.create_work_pool(WorkPool(id="", name="cli-pool"))
    never = invoke("flow-run", "inspect", run.id)
    assert "no worker has polled pool 'cli-pool'" in never.stderr
    assert "fleetflow worker start --pool cli-pool" in never.stderr

    temp_store.claim_flow_runs("other-pool", "w1")  # polls another pool: still stale
    temp_store.claim_flow_runs("cli-pool", "w1", limit=0)
    polled = invoke("flow-run", "inspect", run.id)
    assert polled.exit_code == 0 and "Warning" not in polled.stderr


def test_logs_show_lines_with_source(temp_store):
    run = _run_simple_flow(temp_store)
    result = invoke("flow-run", "logs", run.id[:10])
    assert result.exit_code == 0, result.output
    assert "hello from the flow" in result.stdout and "doubling 4" in result.stdout
    flow_line = next(line for line in result.stdout.splitlines() if "hello from the flow" in line)
    assert "INFO" in flow_line and " flow " in flow_line
    task_line = next(line for line in result.stdout.splitlines() if "doubling 4" in line)
    assert "double" in task_line.split("|")[0]

    tail = invoke("flow-run", "logs", run.id, "--tail", "1", "--json")
    lines = [json.loads(line) for line in tail.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["level_name"] == "INFO" and lines[0]["flow_run_id"] == run.id


def test_logs_follow_returns_once_run_is_final(temp_store):
    run = _run_simple_flow(temp_store)
    result = invoke("flow-run", "logs", run.id, "--follow")
    assert result.exit_code == 0 and "hello from the flow" in result.stdout


def test_cancel_scheduled_run_cascades_to_child(temp_store):
    parent = temp_store.create_flow_run("cli-parent", state=Scheduled())
    link = temp_store.create_task_run(parent.id, "cli-child-key", "cli-child-0")
    child = temp_store.create_flow_run("cli-child", state=Scheduled(), parent_task_run_id=link.id)

    result = invoke("flow-run", "cancel", parent.id[:8])
    assert result.exit_code == 0, result.output
    assert parent.id in result.stdout and child.id in result.stdout
    for run_id in (parent.id, child.id):
        assert temp_store.read_flow_run(run_id).state_type is StateType.CANCELLED


def test_cancel_final_run_is_an_error(temp_store):
    run = temp_store.create_flow_run("done", state=Running())
    temp_store.set_flow_run_state(run.id, Completed())
    assert_one_line_error(invoke("flow-run", "cancel", run.id), "already COMPLETED")


def _finish_later(store, run_id, final_state, message):
    """Like a worker elsewhere: log a line, then end the run, while the CLI is following."""
    import threading
    import time

    from fleetflow.orchestrator.schemas import LogRecord
    from fleetflow.states import utcnow

    def finish():
        time.sleep(0.4)
        store.write_logs([LogRecord(flow_run_id=run_id, message=message, timestamp=utcnow())])
        store.set_flow_run_state(run_id, final_state)

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def test_follow_run_streams_until_final(temp_store, capsys):
    import pytest

    from fleetflow.cli.flow_runs import follow_run
    from fleetflow.exceptions import RunFailed
    from fleetflow.states import Failed

    run = temp_store.create_flow_run("followed", state=Running())
    thread = _finish_later(temp_store, run.id, Completed(), "late line")
    final = follow_run(temp_store, run.id)
    thread.join()
    assert final.state_type is StateType.COMPLETED
    out = capsys.readouterr().out
    assert "late line" in out and "ended COMPLETED" in out

    failing = temp_store.create_flow_run("followed", state=Running())
    thread = _finish_later(temp_store, failing.id, Failed(message="boom"), "about to fail")
    with pytest.raises(RunFailed, match="ended FAILED: boom"):
        follow_run(temp_store, failing.id)
    thread.join()


def test_logs_follow_waits_for_new_lines(temp_store):
    run = temp_store.create_flow_run("followed", state=Running())
    thread = _finish_later(temp_store, run.id, Completed(), "arrived while following")
    result = invoke("flow-run", "logs", run.id, "--follow")
    thread.join()
    assert result.exit_code == 0 and "arrived while following" in result.stdout
