"""Usage, cost and right-sizing on the UI: the flow-run header and the sub-flow tree say what a
child used of what it asked for and what it cost, the parent shows the pipeline's total, and
the deployments page carries the same recommendation text as ``deployment recommend``."""

from __future__ import annotations

import html
import re

from ui_helpers import make_deployment

from fleetflow.states import State, StateType
from fleetflow.usage.advice import deployment_badge


def _m(value: float) -> dict:
    return {"value": value, "source": "test load"}


def _usage(peak_mib: float, cpu_s: float, *, memory: int = 4096, cpu: int = 2048) -> dict:
    return {"peak_memory_mib": _m(peak_mib), "cpu_seconds": _m(cpu_s), "avg_cpu": _m(cpu_s / 120.0), "wall_seconds": _m(120.0),
            "billed_seconds": _m(120.0), "requested_cpu": _m(cpu), "requested_memory_mib": _m(memory),
            "platform": {"kind": "ecs", "launch_type": "FARGATE", "region": "us-east-1", "arch": "x86_64"},
            "warnings": ["over-sized: peak memory 300 MiB is 7% of 4096 MiB"]}  # fmt: skip


def _finished_child(store, parent_id: str, dep, name: str, usage: dict):
    child = store.create_flow_run_from_deployment(dep.id, flow_run_name=name, parent_flow_run_id=parent_id,
                                                  parent_dynamic_key=name)
    for state in (StateType.PENDING, StateType.RUNNING, StateType.COMPLETED):
        store.set_flow_run_state(child.id, State(type=state))
    store.write_flow_run_usage(child.id, usage)
    return child


def test_run_page_and_tree_show_used_of_requested_cost_and_pipeline_total(ui):
    store = ui.store
    dep = make_deployment(store, infra_overrides={"cpu": 2048, "memory": 4096})
    parent = store.create_flow_run("pipeline", name="nightly")
    child = _finished_child(store, parent.id, dep, "train-1", _usage(300, 12.0))
    browser = ui.browser("read")

    tree = html.unescape(browser.get(f"/runs/{parent.id}").text)
    assert "used 0.29 of 4 GiB, 0.1 of 2 vCPU" in tree  # the child's row in the sub-flow tree
    assert "pipeline $" in tree and "over 2 runs" in tree

    page = html.unescape(browser.get(f"/runs/{child.id}").text)
    assert 'data-slot="usage"' in page
    assert "used 0.29 of 4 GiB, 0.1 of 2 vCPU" in page
    assert re.search(r'class="cost">\$0\.\d+', page)  # the Fargate estimate of 2 vCPU / 4 GiB for 120 s
    assert "over-sized" in page


def test_run_without_a_usage_record_shows_no_usage_slot(ui):
    run = ui.store.create_flow_run("etl", name="plain")
    page = ui.browser("read").get(f"/runs/{run.id}").text
    assert 'data-slot="usage"' not in page


def test_deployments_page_carries_the_recommendation_text(ui):
    store = ui.store
    dep = make_deployment(store, infra_overrides={"cpu": 2048, "memory": 4096})
    for i in range(5):  # five nightly pipelines, each with one train child
        parent = store.create_flow_run("pipeline", name=f"p-{i}")
        _finished_child(store, parent.id, dep, f"train-{i}", _usage(300, 12.0))
    expected = deployment_badge(store, dep.full_name)
    assert expected.startswith("downsize 2048 cpu / 4096 MiB -> "), expected  # 300 MiB used of 4 GiB
    page = html.unescape(ui.browser("read").get("/deployments").text)
    assert 'class="advice"' in page and expected in page


def test_deployment_without_history_gets_the_advice_message_not_an_error(ui):
    dep = make_deployment(ui.store)
    response = ui.browser("read").get("/deployments")
    assert response.status_code == 200
    assert html.unescape(response.text).count('class="advice"') == 1
    assert dep.full_name in html.unescape(response.text)


def test_pipeline_total_is_on_the_full_page_and_left_out_of_the_header_refresh(ui):
    from fleetflow.usage.display import money
    from fleetflow.usage.rollup import run_cost, tree_cost

    store = ui.store
    dep = make_deployment(store, infra_overrides={"cpu": 2048, "memory": 4096})
    parent = store.create_flow_run("pipeline", name="nightly")
    first = _finished_child(store, parent.id, dep, "train-1", _usage(300, 12.0))
    _finished_child(store, parent.id, dep, "train-2", _usage(500, 30.0))
    _finished_child(store, first.id, dep, "train-1-fold", _usage(200, 6.0))  # a grandchild: in the total too
    one = run_cost(store.read_flow_run(first.id), store.read_flow_run_usage(first.id)).cost.amount
    assert one and one > 0  # 2 vCPU / 4 GiB on Fargate for 120 billed seconds
    _costs, expected, unknown = tree_cost(store, parent.id)  # the CLI's full walk of the tree
    assert abs(expected - 3 * one) < 1e-9  # three launched runs of the same size and time
    assert unknown == 1  # the script's own run has no launch to price
    browser = ui.browser("read")

    page = html.unescape(browser.get(f"/runs/{parent.id}").text)
    assert f'data-slot="pipeline">pipeline {money(expected)} over 4 runs (1 without an estimate)<' in page
    assert html.unescape(browser.get(f"/runs/{first.id}").text).count(f"pipeline {money(2 * one)} over 2 runs") == 1

    header = browser.get(f"/runs/{parent.id}/header")
    assert header.status_code == 200
    assert 'id="run-header"' in header.text and "nightly" in header.text and parent.id in header.text
    assert "over 4 runs" not in header.text and "data-slot=\"pipeline\"" not in header.text  # no tree walk on refresh
    child_header = html.unescape(browser.get(f"/runs/{first.id}/header").text)
    assert "used 0.29 of 4 GiB, 0.1 of 2 vCPU" in child_header and "over 2 runs" not in child_header


def test_the_cli_run_tree_and_the_ui_print_the_same_usage_and_cost(ui):
    from fleetflow.cli.tree import run_tree_rows

    store = ui.store
    dep = make_deployment(store, infra_overrides={"cpu": 2048, "memory": 4096})
    parent = store.create_flow_run("pipeline", name="nightly")  # a script's run: not launched, no cost of its own
    child = _finished_child(store, parent.id, dep, "train-1", _usage(300, 12.0))
    link = store.create_task_run(parent.id, "pipeline.inline", "inline")
    inline = store.create_flow_run("inline-step", name="inline", parent_task_run_id=link.id)  # in the parent's process
    rows = {row["id"]: row for row in run_tree_rows(store, parent.id)}
    assert set(rows) == {parent.id, child.id, inline.id}
    assert rows[parent.id]["cost_text"] is None and rows[inline.id]["cost_text"] is None
    assert rows[child.id]["usage_line"] == "used 0.29 of 4 GiB, 0.1 of 2 vCPU"
    assert rows[child.id]["cost_text"].startswith("$")

    page = html.unescape(ui.browser("read").get(f"/runs/{parent.id}").text)
    assert f'<span class="usage-line small">{rows[child.id]["usage_line"]}</span>' in page
    assert f'<span class="cost small">{rows[child.id]["cost_text"]}</span>' in page
    assert page.count('class="cost small"') == 1  # the in-process child has no cost on the page either
    child_page = html.unescape(ui.browser("read").get(f"/runs/{child.id}").text)
    assert f'<span class="cost">{rows[child.id]["cost_text"]}</span>' in child_page
