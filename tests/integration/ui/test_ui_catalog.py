"""Deployments (last runs, Quick run, Custom run and its errors), work pools and workers,
blocks with secrets masked, no planted secret anywhere in the HTML, and page weight."""

from __future__ import annotations

import datetime as dt
import re

from ui_helpers import csrf_of, make_deployment

from fleetflow.blocks import Block, SecretStr
from fleetflow.client.embedded import EmbeddedClient
from fleetflow.states import State, StateType, utcnow

PLANTED = "sk-planted-Secret-4f1c9e"


class Vault(Block):
    _block_type_slug = "ui-test-vault"
    user: str = "svc"
    password: SecretStr | None = None


def test_deployments_page_lists_pool_schedule_overrides_and_the_last_ten_runs(ui):
    dep = make_deployment(ui.store, infra_overrides={"cpu": 2048, "memory": 4096}, schedule={"cron": "0 3 * * *"})
    for i in range(12):
        run = ui.store.create_flow_run_from_deployment(dep.id, idempotency_key=str(i))
        if i % 2:
            ui.store.set_flow_run_state(run.id, State(type=StateType.FAILED), force=True)
    html = ui.browser("read").get("/deployments").text
    assert "train-flow/train" in html and "ml-pool" in html and "cron 0 3 * * *" in html
    assert "cpu=2048" in html and "memory=4096" in html
    assert html.count('class="dot ') == 10
    assert html.count('class="dot st-failed"') == 5 and html.count('class="dot st-scheduled"') == 5


def test_quick_run_starts_a_run_with_the_defaults(ui):
    dep = make_deployment(ui.store)
    browser = ui.browser("run")
    response = browser.post(f"/deployments/{dep.id}/quick-run", data={"csrf": csrf_of(browser.get("/deployments").text)})
    (run,) = ui.store.read_flow_runs(deployment_id=dep.id)
    assert response.status_code == 303 and response.headers["location"] == f"/runs/{run.id}"
    assert run.state_type is StateType.SCHEDULED and run.parameters == {} and run.work_pool_name == "ml-pool"
    assert "SCHEDULED" in browser.get(f"/runs/{run.id}").text


def _custom(browser, dep, **fields):
    token = csrf_of(browser.get(f"/deployments/{dep.id}/run").text)
    return browser.post(f"/deployments/{dep.id}/run", data={"csrf": token, **fields})


def test_custom_run_form_is_generated_from_the_parameter_schema(ui):
    dep = make_deployment(ui.store)
    html = ui.browser("run").get(f"/deployments/{dep.id}/run").text
    assert 'name="p.n" value="10"' in html  # the deployment's default
    assert 'name="p.label" value=""' in html
    assert 'name="o.cpu"' in html and 'name="o.memory"' in html


def test_custom_run_with_a_wrong_type_shows_the_error_next_to_the_field_and_creates_no_run(ui):
    dep = make_deployment(ui.store)
    browser = ui.browser("run")
    response = _custom(browser, dep, **{"p.n": "ten", "p.label": "x"})
    assert response.status_code == 422
    error = re.search(r'<p class="field-error" role="alert" data-field="(\w+)">([^<]+)</p>', response.text)
    assert error and error.group(1) == "n" and "integer" in error.group(2)
    assert 'name="p.n" value="ten"' in response.text  # what was typed stays in the form
    bad_cpu = _custom(browser, dep, **{"p.n": "3", "o.cpu": "lots"})
    assert bad_cpu.status_code == 422 and 'data-field="cpu">cpu must be a whole number' in bad_cpu.text
    assert ui.store.read_flow_runs(deployment_id=dep.id) == []


def test_custom_run_with_an_invalid_fargate_pair_shows_the_valid_sizes(ui):
    ecs = {"type": "ecs-task", "data": {"cpu": 1024, "memory": 2048, "image": "repo/flow:1", "cluster": "ml"}}
    dep = make_deployment(ui.store, infrastructure=ecs)
    browser = ui.browser("run")
    response = _custom(browser, dep, **{"p.n": "3", "o.cpu": "1024", "o.memory": "512"})
    assert response.status_code == 422
    error = re.search(r'data-field="memory">([^<]+)</p>', response.text)
    assert error and "valid memory values for cpu=1024 are" in error.group(1) and "2048" in error.group(1)
    assert ui.store.read_flow_runs(deployment_id=dep.id) == []
    good = _custom(browser, dep, **{"p.n": "3", "p.label": "big", "o.cpu": "2048", "o.memory": "8192"})
    (run,) = ui.store.read_flow_runs(deployment_id=dep.id)
    assert good.status_code == 303 and good.headers["location"] == f"/runs/{run.id}"
    assert run.parameters == {"n": 3, "label": "big"} and run.infra_overrides == {"cpu": 2048, "memory": 8192}


def test_work_pools_page_shows_counts_and_worker_health(ui):
    dep = make_deployment(ui.store)
    for i in range(3):
        ui.store.create_flow_run_from_deployment(dep.id, idempotency_key=str(i))
    running = ui.store.create_flow_run_from_deployment(dep.id, idempotency_key="r")
    ui.store.set_flow_run_state(running.id, State(type=StateType.RUNNING), force=True)
    ui.store.worker_heartbeat("ml-pool", "fresh-worker", hostname="node-a", pid=11)
    ui.store.worker_heartbeat("ml-pool", "old-worker", hostname="node-b", pid=12)
    with ui.store.engine.begin() as conn:  # a heartbeat from ten minutes ago
        from fleetflow.orchestrator import tables

        conn.execute(tables.workers.update().where(tables.workers.c.name == "old-worker")
                     .values(last_heartbeat=utcnow() - dt.timedelta(minutes=10)))  # fmt: skip
    html = ui.browser("read").get("/work-pools").text
    assert "<strong>3</strong> queued" in html and "<strong>1</strong> running" in html
    fresh = re.search(r"fresh-worker</td><td>node-a</td>.*?health (\w+)", html, re.S)
    old = re.search(r"old-worker</td><td>node-b</td>.*?health (\w+)", html, re.S)
    assert fresh.group(1) == "healthy" and old.group(1) == "stale"


def test_blocks_are_listed_by_type_and_inspected_with_secrets_masked(ui):
    Vault(user="svc-user", password=PLANTED).save("prod", client=EmbeddedClient(ui.store))
    browser = ui.browser("admin")  # even an admin's UI never unseals
    listing = browser.get("/blocks").text
    assert "ui-test-vault" in listing and 'href="/blocks/ui-test-vault/prod"' in listing
    page = browser.get("/blocks/ui-test-vault/prod").text
    assert "svc-user" in page and "********" in page and PLANTED not in page


def test_no_planted_secret_reaches_any_page(ui):
    client = EmbeddedClient(ui.store)
    Vault(password=PLANTED).save("leaky", client=client)
    dep = make_deployment(ui.store, infrastructure_block="ui-test-vault/leaky")
    run = ui.store.create_flow_run("secretive", parameters={"vault": {"$ref": "ui-test-vault/leaky"}})
    browser = ui.browser("admin")
    token = csrf_of(browser.get("/runs").text)
    pages = ["/runs", "/runs/table", f"/runs/{run.id}", f"/runs/{run.id}/logs", f"/runs/{run.id}/logs.txt", "/deployments",
             f"/deployments/{dep.id}/run", "/work-pools", "/blocks", "/blocks/ui-test-vault/leaky"]  # fmt: skip
    for path in pages:
        response = browser.get(path)
        assert response.status_code == 200, path
        assert PLANTED not in response.text, path
    custom = browser.post(f"/deployments/{dep.id}/run", data={"csrf": token, "p.n": "x"})
    assert PLANTED not in custom.text


def test_pages_stay_under_200_kb_with_their_assets(ui):
    dep = make_deployment(ui.store)
    parent = ui.store.create_flow_run("big", name="big-parent")
    ui.store.set_flow_run_state(parent.id, State(type=StateType.RUNNING))
    for i in range(1000):
        task = ui.store.create_task_run(parent.id, "big.step", f"step-{i}", dynamic_key=str(i))
        ui.store.set_task_run_state(task.id, State(type=StateType.RUNNING))
    browser = ui.browser("admin")
    assets = sum(len(browser.get(f"/static/{name}").content) for name in ("style.css", "ui.js", "htmx.min.js"))
    for path in ("/runs", f"/runs/{parent.id}", "/deployments", f"/deployments/{dep.id}/run", "/work-pools", "/blocks"):
        html = browser.get(path).content
        assert len(html) + assets < 200_000, (path, len(html), assets)
    run_page = browser.get(f"/runs/{parent.id}").text
    assert "<title>1000 running task runs</title>" in run_page  # every task run is a bar of the timeline
    assert "Show 50 more of 950" in run_page  # the table pages; the page stays light
    more = browser.get(f"/runs/{parent.id}/task-runs?offset=950").text
    assert more.count("<tr>") == 50 and "step-999" in more and "more of" not in more
    assert browser.get("/static/../pyproject.toml").status_code == 404
    assert browser.get("/static/VENDORED.md").status_code == 404


def test_pausing_a_pool_stops_claims_until_it_is_resumed(ui):
    dep = make_deployment(ui.store)
    ui.store.set_deployment_work_queue(dep.id, "gpu")  # a deployment in its own queue is paused with its pool
    other = make_deployment(ui.store, name="other")
    runs = {ui.store.create_flow_run_from_deployment(d.id).id for d in (dep, other)}
    admin = ui.browser("admin")
    token = csrf_of(admin.get("/work-pools").text)
    assert ui.browser("run").post("/work-pools/ml-pool/pause", data={"csrf": token}).status_code == 403
    assert admin.post("/work-pools/ml-pool/pause", data={"csrf": "forged"}).status_code == 403
    assert ui.store.read_work_pool("ml-pool").is_paused is False
    assert admin.post("/work-pools/ml-pool/pause", data={"csrf": token}).status_code == 303
    assert ui.store.read_work_pool("ml-pool").is_paused is True
    assert ui.store.read_work_queues("ml-pool") == []  # the pool's own flag, not its queues'
    page = admin.get("/work-pools").text
    assert "PAUSED" in page and 'action="/work-pools/ml-pool/resume"' in page
    assert ui.store.claim_flow_runs("ml-pool", "w1", limit=10) == []
    assert {ui.store.read_flow_run(r).state.type for r in runs} == {StateType.SCHEDULED}
    assert admin.post("/work-pools/ml-pool/resume", data={"csrf": token}).status_code == 303
    assert {r.id for r in ui.store.claim_flow_runs("ml-pool", "w1", limit=10)} == runs
    assert "PAUSED" not in admin.get("/work-pools").text


def test_a_read_key_sees_no_pause_button_and_is_refused(ui):
    make_deployment(ui.store)
    reader = ui.browser("read")
    page = reader.get("/work-pools").text
    assert "ml-pool" in page and "/work-pools/ml-pool/pause" not in page and "Pause" not in page
    assert reader.post("/work-pools/ml-pool/pause", data={"csrf": csrf_of(page)}).status_code == 403
    assert ui.store.read_work_pool("ml-pool").is_paused is False
