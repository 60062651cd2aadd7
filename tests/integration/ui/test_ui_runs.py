"""The Runs page (filters, keyset pages, bounded counts) and the flow-run page (header with the
infrastructure handle and stop reason, sub-flow tree, timeline, task runs, states, result,
logs with filters, live tail and download, Cancel and Retry)."""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa
from ui_helpers import csrf_of, make_deployment

from fleetflow.orchestrator import tables
from fleetflow.orchestrator.schemas import LogRecord
from fleetflow.states import State, StateType, utcnow

ECS_ARN = "arn:aws:ecs:eu-west-1:123456789012:task/ml-cluster/0a1b2c3d4e5f"
OOM = "out of memory: the flow container was killed for using more than 4096 MiB; raise `memory` (ECS: stopCode=EssentialContainerExited)"


def _names(html: str) -> list[str]:
    return re.findall(r'class="run-link" href="/runs/[^"]+">([^<]+)<', html)


def _age(store, run_id: str, days: float) -> None:
    """Make a run look older (the store stamps ``created`` itself)."""
    with store.engine.begin() as conn:
        conn.execute(sa.update(tables.flow_runs).where(tables.flow_runs.c.id == run_id)
                     .values(created=utcnow() - dt.timedelta(days=days)))  # fmt: skip


def test_runs_page_filters_by_state_flow_deployment_pool_tag_and_window(ui):
    store = ui.store
    dep = make_deployment(store)
    a = store.create_flow_run("etl", name="etl-a", tags=["nightly"])
    b = store.create_flow_run("etl", name="etl-b", tags=["nightly-2"])
    store.set_flow_run_state(b.id, State(type=StateType.RUNNING))
    c = store.create_flow_run_from_deployment(dep.id, flow_run_name="train-c")
    old = store.create_flow_run("etl", name="etl-old")
    _age(store, old.id, days=3)
    browser = ui.browser("read")
    assert set(_names(browser.get("/runs").text)) == {"etl-a", "etl-b", "train-c", "etl-old"}
    assert _names(browser.get("/runs?state=RUNNING").text) == ["etl-b"]
    assert set(_names(browser.get("/runs?state=SCHEDULED&state=PENDING").text)) == {"train-c", "etl-a", "etl-old"}
    assert set(_names(browser.get("/runs?flow=etl").text)) == {"etl-a", "etl-b", "etl-old"}
    assert _names(browser.get(f"/runs?deployment={dep.full_name}").text) == ["train-c"]
    assert _names(browser.get("/runs?pool=ml-pool").text) == ["train-c"]
    assert _names(browser.get("/runs?tag=nightly").text) == ["etl-a"]  # exact tag, not a prefix
    assert "etl-old" not in _names(browser.get("/runs?window=24h").text)
    unknown = browser.get("/runs?deployment=nope/none").text
    assert "No deployment &#39;nope/none&#39;" in unknown and _names(unknown) == []
    assert a.id and c.id


def test_runs_page_pages_by_keyset_and_counts_the_window(ui):
    for i in range(57):
        ui.store.create_flow_run("many", name=f"run-{i:02d}")
    browser = ui.browser("read")
    first = browser.get("/runs").text
    assert "<strong>57</strong> runs in the last 7d" in first
    page1 = _names(first)
    assert len(page1) == 50 and page1[0] == "run-56"
    older = re.search(r'href="/runs\?([^"]*cursor=[^"]+)">Older runs', first).group(1).replace("&amp;", "&")
    second = browser.get(f"/runs?{older}").text
    page2 = _names(second)
    assert page2 == [f"run-{i:02d}" for i in range(6, -1, -1)] and "Older runs" not in second
    assert 'hx-trigger="every 5s' in first and 'hx-trigger="every 5s' not in second  # auto-refresh: first page only
    assert ui.store.count_browsed_flow_runs(limit=10) == 10  # bounded: never counts past the limit
    table = browser.get("/runs/table").text
    assert "<html" not in table and _names(table) == page1


def _ecs_child(store, dep, parent, name: str, *, memory: int, state: State | None = None):
    child = store.create_flow_run_from_deployment(dep.id, parent_flow_run_id=parent.id, flow_run_name=name,
                                                  parent_dynamic_key=name)  # fmt: skip
    infra = {"kind": "ecs-task", "cpu": 1024, "memory": memory, "cluster": "ml-cluster", "region": "eu-west-1",
             "task_arn": ECS_ARN, "launch_type": "FARGATE"}  # fmt: skip
    store.update_flow_run(child.id, infrastructure=infra, infrastructure_pid=ECS_ARN)
    store.set_flow_run_state(child.id, State(type=StateType.RUNNING), force=True)
    store.set_flow_run_state(child.id, state or State(type=StateType.COMPLETED), force=True)
    return child


def test_flow_run_page_shows_the_tree_with_each_childs_machine_and_stop_reason(ui):
    store = ui.store
    dep = make_deployment(store)
    parent = store.create_flow_run("pipeline", name="the-parent", parameters={"n": 3})
    store.update_flow_run(parent.id, infrastructure={"kind": "process", "cpu": None, "memory": None},
                          infrastructure_pid="process:buildhost:4242:123.0")  # fmt: skip
    store.set_flow_run_state(parent.id, State(type=StateType.RUNNING))
    ok = _ecs_child(store, dep, parent, "child-ok", memory=2048)
    oom = _ecs_child(store, dep, parent, "child-oom", memory=4096, state=State(type=StateType.CRASHED, message=OOM))
    grand = _ecs_child(store, dep, oom, "grandchild", memory=8192)
    browser = ui.browser("read")
    html = browser.get(f"/runs/{parent.id}").text
    assert "pid 4242" in html and "buildhost" in html  # the Process handle
    assert _names(html) == ["child-ok", "child-oom"]  # the tree, oldest first
    assert "ECS 1024 cpu / 2048 MiB" in html and "ECS 1024 cpu / 4096 MiB" in html
    assert "Out of memory" in html and "1 sub-flow" in html  # stop reason in words; child-oom expands
    assert f'hx-get="/runs/{oom.id}/children"' in html and f'hx-get="/runs/{ok.id}/children"' not in html
    assert 'class="timeline"' in html
    grandchildren = browser.get(f"/runs/{oom.id}/children").text
    assert _names(grandchildren) == ["grandchild"] and "8192 MiB" in grandchildren
    child_page = browser.get(f"/runs/{oom.id}").text
    assert "<strong>Out of memory:</strong> out of memory: the flow container" in child_page
    assert ECS_ARN in child_page and "ml-cluster" in child_page
    assert ("https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/ml-cluster/tasks/0a1b2c3d4e5f/configuration"
            "?region=eu-west-1") in child_page  # fmt: skip
    assert "cloudwatch/home?region=eu-west-1" in child_page
    assert f'href="/runs/{parent.id}"' in child_page  # up to the parent
    assert grand.id in browser.get(f"/runs/{grand.id}").text


def test_flow_run_page_shows_task_runs_state_history_and_an_inline_result(ui):
    store = ui.store
    run = store.create_flow_run("calc", name="calc-run")
    store.set_flow_run_state(run.id, State(type=StateType.RUNNING))
    task = store.create_task_run(run.id, "calc.add", "add-numbers")
    store.set_task_run_state(task.id, State(type=StateType.RUNNING))
    store.set_task_run_state(task.id, State(type=StateType.COMPLETED))
    result = {"result": {"serializer": "json", "value": '{"answer": 42}'}}
    store.set_flow_run_state(run.id, State(type=StateType.COMPLETED, data=result))
    html = ui.browser("read").get(f"/runs/{run.id}").text
    assert "add-numbers" in html and "Task runs <span class=\"muted\">1</span>" in html
    assert html.count('class="badge st-completed"') >= 3  # header, task run, history
    assert "st-running" in html and "st-pending" in html  # the whole history
    assert '&#34;answer&#34;: 42' in html or '"answer": 42' in html


def _logs(store, run_id: str, *lines: tuple[int, str]) -> None:
    store.write_logs([LogRecord(flow_run_id=run_id, level=level, name="flow", message=text, timestamp=utcnow())
                      for level, text in lines])  # fmt: skip


def test_logs_filter_by_level_and_text_and_download_as_text(ui):
    run = ui.store.create_flow_run("chatty", name="chatty-run")
    _logs(ui.store, run.id, (20, "loading shard 1"), (30, "slow disk on shard 2"), (40, "shard 3 failed"), (20, "done"))
    browser = ui.browser("read")
    page = browser.get(f"/runs/{run.id}").text
    assert all(t in page for t in ("loading shard 1", "slow disk on shard 2", "shard 3 failed", "done"))
    warnings = browser.get(f"/runs/{run.id}/logs?level=WARNING").text
    assert "slow disk" in warnings and "shard 3 failed" in warnings and "loading" not in warnings and "done" not in warnings
    found = browser.get(f"/runs/{run.id}/logs?q=SHARD").text
    assert "done" not in found and found.count('class="log ') == 3
    text = browser.get(f"/runs/{run.id}/logs.txt")
    assert "attachment" in text.headers["content-disposition"]
    lines = text.text.strip().splitlines()
    assert len(lines) == 4 and lines[2].split()[1] == "ERROR" and lines[2].endswith("| shard 3 failed")


def test_the_live_tail_sends_new_lines_and_the_state_then_ends_when_the_run_is_final(ui):
    run = ui.store.create_flow_run("tail", name="tail-run")
    _logs(ui.store, run.id, (20, "already shown"))
    shown = ui.store.read_logs(flow_run_id=run.id)[-1].id
    _logs(ui.store, run.id, (20, "new line one"), (10, "debug noise"))
    ui.store.set_flow_run_state(run.id, State(type=StateType.COMPLETED), force=True)
    browser = ui.browser("read")
    with browser.stream("GET", f"/runs/{run.id}/events?after={shown}&level=INFO") as stream:
        body = "".join(stream.iter_text())  # the stream ends by itself once the run is final
    assert "event: log" in body and "new line one" in body
    assert "already shown" not in body and "debug noise" not in body
    assert re.search(r"event: state\r?\ndata: COMPLETED", body)
    assert "event: end" in body


def test_cancel_cascades_to_unfinished_children(ui):
    store = ui.store
    dep = make_deployment(store)
    parent = store.create_flow_run("pipeline", name="p")
    store.set_flow_run_state(parent.id, State(type=StateType.RUNNING))
    store.update_flow_run(parent.id, infrastructure_pid="arn:aws:ecs:eu-west-1:1:task/c/p", worker_name="w1")
    child = store.create_flow_run_from_deployment(dep.id, parent_flow_run_id=parent.id)
    done = store.create_flow_run_from_deployment(dep.id, parent_flow_run_id=parent.id, parent_dynamic_key="2")
    store.set_flow_run_state(done.id, State(type=StateType.COMPLETED), force=True)
    browser = ui.browser("run")
    token = csrf_of(browser.get(f"/runs/{parent.id}").text)
    response = browser.post(f"/runs/{parent.id}/cancel", data={"csrf": token})
    assert response.status_code == 303 and response.headers["location"] == f"/runs/{parent.id}"
    assert store.read_flow_run(parent.id).state_type is StateType.CANCELLING  # launched: its worker stops it
    assert store.read_flow_run(child.id).state_type is StateType.CANCELLED  # never launched: at once
    assert store.read_flow_run(done.id).state_type is StateType.COMPLETED
    again = browser.post(f"/runs/{child.id}/cancel", data={"csrf": token})
    assert again.status_code == 409 and "nothing to cancel" in again.text


def test_retry_relaunches_a_finished_deployment_run_and_refuses_script_runs(ui):
    store = ui.store
    dep = make_deployment(store)
    run = store.create_flow_run_from_deployment(dep.id)
    store.set_flow_run_state(run.id, State(type=StateType.CRASHED, message="exit 137"), force=True)
    script = store.create_flow_run("script-flow")
    store.set_flow_run_state(script.id, State(type=StateType.FAILED), force=True)
    browser = ui.browser("run")
    page = browser.get(f"/runs/{run.id}").text
    assert f'action="/runs/{run.id}/retry"' in page
    assert browser.post(f"/runs/{run.id}/retry", data={"csrf": csrf_of(page)}).status_code == 303
    assert store.read_flow_run(run.id).state_type is StateType.SCHEDULED
    refused = browser.post(f"/runs/{script.id}/retry", data={"csrf": csrf_of(page)})
    assert refused.status_code == 409 and "did not come from a deployment" in refused.text
    assert f'action="/runs/{script.id}/retry"' not in browser.get(f"/runs/{script.id}").text


def test_a_missing_run_is_a_404_page(ui):
    response = ui.browser("read").get("/runs/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404 and "No flow run with id" in response.text
