"""The seven scenarios of the web UI, as a person does them in a real browser (Debian's
chromium through Playwright) against a real server. Each saves a screenshot."""

from __future__ import annotations

import re

from browser_helpers import login
from playwright.sync_api import expect

from fleetflow.states import StateType


def test_1_log_in(page, served, shots):
    page.context.clear_cookies()
    page.goto(f"{served.url}/runs")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fruns$"))
    page.fill("#key", "ffk_wrong")
    page.click("button[type=submit]")
    expect(page.locator(".field-error")).to_contain_text("unknown, revoked or expired")
    page.fill("#key", served.key)
    page.screenshot(path=shots / "1-login.png")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{served.url}/runs")
    expect(page.locator(".who")).to_contain_text("browser-admin")
    session = [c for c in page.context.cookies() if c["name"] == "fleetflow_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"


def test_2_runs_list(page, served, pipeline, shots):
    assert f"see it in the web UI: {served.url}/runs/{pipeline['parent']}" in pipeline["stdout"]  # make example's line
    login(page, served)
    page.goto(f"{served.url}/runs")
    rows = page.locator("table.runs tbody tr")
    expect(rows).to_have_count(4)  # the parent and its three children
    expect(page.locator("table.runs")).to_contain_text("Process 2048 cpu / 4096 MiB")
    page.check("input[name=state][value=COMPLETED]")
    page.fill("input[name=flow]", "train")
    page.click("form.filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("train/train")
    page.goto(f"{served.url}/runs")
    page.screenshot(path=shots / "2-runs.png", full_page=True)


def test_3_parent_run_shows_its_three_children_with_their_sizes(page, served, pipeline, shots):
    login(page, served)
    page.goto(f"{served.url}/runs?flow=ml-pipeline")
    page.click("table.runs .run-link")
    expect(page).to_have_url(f"{served.url}/runs/{pipeline['parent']}")
    children = page.locator("#tree .node")
    expect(children).to_have_count(3)
    for flow_name, size in (("fetch-data", "1024 cpu / 2048 MiB"), ("preprocess", "512 cpu / 1024 MiB"), ("train", "2048 cpu / 4096 MiB")):
        child = children.filter(has_text=flow_name)
        expect(child).to_contain_text(f"Process {size}")
        expect(child.locator(".badge")).to_have_text("COMPLETED")
    expect(page.locator("svg.timeline rect")).to_have_count(3)
    page.screenshot(path=shots / "3-flow-run.png", full_page=True)
    children.filter(has_text="train").locator(".run-link").click()
    expect(page.locator("#run-header")).to_contain_text("pid")
    expect(page.locator(".crumbs")).to_contain_text("↑")


def test_4_a_running_childs_log_line_appears_live(page, served, script_flows, shots):
    login(page, served)
    flow = script_flows("live")
    child_id = flow.running("live-child")
    page.goto(f"{served.url}/runs/{child_id}")
    expect(page.locator("#run-header .badge")).to_have_text("RUNNING")
    expect(page.locator("#log-lines")).to_contain_text("waiting for the test to send a line")
    expect(page.locator("#live")).to_be_visible()
    flow.send("hello from the test")
    expect(page.locator("#log-lines")).to_contain_text("the live line: hello from the test")  # no reload: SSE
    page.screenshot(path=shots / "4-live-logs.png", full_page=True)
    flow.send("end", f"{flow.fifo}.end")
    expect(page.locator("#run-header .badge")).to_have_text("COMPLETED")  # the state arrives live too


def test_5_quick_run_a_deployment(page, served, pipeline, shots):
    login(page, served)
    page.goto(f"{served.url}/deployments")
    expect(page.locator("tr", has_text="fetch-data/fetch").locator(".dot")).to_have_count(1)
    page.screenshot(path=shots / "5-deployments.png", full_page=True)
    page.click("button[aria-label='Quick run fetch-data/fetch']")
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    run_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#run-header .badge")).to_have_text("SCHEDULED")
    run = served.store.read_flow_run(run_id)
    assert run.flow_name == "fetch-data" and run.state_type is StateType.SCHEDULED and run.work_pool_name


def test_6_custom_run_with_a_bad_parameter_shows_the_error(page, served, pipeline, shots):
    login(page, served)
    before = len(served.store.read_flow_runs(flow_name="fetch-data"))
    page.goto(f"{served.url}/deployments")
    page.locator("tr", has_text="fetch-data/fetch").get_by_text("Custom run").click()
    expect(page.locator("input[name='p.n']")).to_have_value("2000")
    page.fill("input[name='p.n']", "lots")
    page.fill("input[name='o.memory']", "8192")
    page.click("button:has-text('Start run')")
    error = page.locator(".field.has-error .field-error")
    expect(error).to_have_attribute("data-field", "n")
    expect(error).to_contain_text("integer")
    expect(page.locator("input[name='p.n']")).to_have_value("lots")
    page.screenshot(path=shots / "6-custom-run-error.png", full_page=True)
    assert len(served.store.read_flow_runs(flow_name="fetch-data")) == before  # no run was created


def test_7_cancel_a_running_run(page, served, script_flows, shots):
    login(page, served)
    flow = script_flows("sleepy")
    run_id = flow.running("sleepy")
    page.goto(f"{served.url}/runs/{run_id}")
    expect(page.locator("#run-header .badge")).to_have_text("RUNNING")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Cancel')")
    expect(page.locator("#run-header .badge")).to_have_text("CANCELLED")
    expect(page.locator(".state-message")).to_contain_text("cancel")
    page.screenshot(path=shots / "7-cancelled.png", full_page=True)
    assert served.store.read_flow_run(run_id).state_type is StateType.CANCELLED
