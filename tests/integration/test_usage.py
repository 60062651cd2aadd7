"""Usage, cost and right-sizing end to end on the embedded default and over HTTP: real worker
processes, real runner subprocesses, a real server for the run-token rules.

Measured usage is checked against a known load as a *difference* from an idle control run of
the same deployment, so the runtime's own memory and start-up CPU cancel out; CPU is asserted
in CPU seconds (which stay CPU seconds on a loaded machine), never in wall time.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from fleetflow import states as st
from fleetflow.cli import app
from fleetflow.client.http import HTTPClient
from fleetflow.deployments import run_deployment
from fleetflow.exceptions import ObjectNotFound, PermissionDenied
from fleetflow.orchestrator import Orchestrator
from fleetflow.orchestrator.schemas import Deployment, WorkPool
from fleetflow.usage import RunUsage
from worker_helpers import WorkerProcess, deploy

LOAD = textwrap.dedent(
    '''
    import time
    from fleetflow import flow

    @flow
    def load(mib: int = 300, cpu_seconds: float = 1.0):
        start = time.process_time()                  # the allocation's page faults count in the 1 s
        block = b"\\x01" * (mib * 1024 * 1024)      # touched: every page is resident
        while time.process_time() - start < cpu_seconds:
            pass
        return len(block)
    '''
)


def cli(*args: str):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def load_project(project):
    (project / "load.py").write_text(LOAD)
    return project


@pytest.fixture
def usage_worker(temp_store, monkeypatch):
    """A worker whose runners sample every 0.1 s (the interval is a setting)."""
    from fleetflow.deployments import ensure_work_pool

    monkeypatch.setenv("FLEETFLOW_USAGE_SAMPLE_INTERVAL", "0.1")
    ensure_work_pool(temp_store, "test-pool")
    w = WorkerProcess("test-pool", "w-usage")
    w.wait_polling(temp_store, "test-pool")
    yield w
    w.stop()


def _usage(client, run_id: str) -> RunUsage:
    record = client.read_flow_run_usage(run_id)
    assert record is not None, f"run {run_id} has no usage record"
    return RunUsage.model_validate(record)


@pytest.mark.parametrize("client_backend", ["sqlite", "http"], indirect=True)
def test_measured_usage_matches_a_known_load(temp_store, load_project, usage_worker):

    from fleetflow.deployments import Deployment

    Deployment.build_from_flow(_load_flow(load_project), "known",
                               path=str(load_project), work_pool_name="test-pool",
                               infra_overrides={"cpu": 1024, "memory": 3072}).apply()
    idle = run_deployment("load/known", parameters={"mib": 0, "cpu_seconds": 0.0}, as_subflow=False)
    busy = run_deployment("load/known", parameters={"mib": 300, "cpu_seconds": 1.0}, as_subflow=False)
    assert idle.state.is_completed() and busy.state.is_completed()
    base, used = _usage(temp_store, idle.id), _usage(temp_store, busy.id)
    extra_memory = used.value("peak_memory_mib") - base.value("peak_memory_mib")
    extra_cpu = used.value("cpu_seconds") - base.value("cpu_seconds")
    assert 300 * 0.85 <= extra_memory <= 300 * 1.15, (base, used)
    # The upper bound catches double counting (a process counted twice would give ~2 s); it is
    # not tighter because the runtime's own CPU around the body differs between two runs on a
    # loaded host (the suite under two CPU hogs measured 1.40 s once, never more).
    assert 0.85 <= extra_cpu <= 1.5, (f"idle {base.value('cpu_seconds'):.3f} s, busy {used.value('cpu_seconds'):.3f} s "
                                       f"of CPU ({base.cpu_seconds.source}); samples {base.samples} / {used.samples}")
    assert used.requested_memory_mib.value == 3072 and used.requested_cpu.value == 1024
    assert used.platform.kind == "process" and used.peak_memory_mib.source and used.cpu_seconds.source
    assert used.samples >= 1 and used.interval_seconds == pytest.approx(0.1)
    # 3072 MiB requested, ~0.4 GiB used: over-sized, said in the logs and in the state message.
    assert used.warnings and "over-sized" in used.warnings[0]
    assert "over-sized" in (temp_store.read_flow_run(busy.id).state.message or "")
    assert any("over-sized" in log.message for log in temp_store.read_logs(flow_run_id=busy.id))


def _load_flow(project):
    from fleetflow.runner import load_flow_from_entrypoint

    return load_flow_from_entrypoint("load.py:load", project)


@pytest.mark.parametrize("client_backend", ["sqlite"], indirect=True)
def test_recommend_apply_makes_the_next_run_use_the_new_size(temp_store, project, usage_worker):
    deploy(project, "echo", "big", infra_overrides={"cpu": 2048, "memory": 8192})
    for x in range(3):
        assert run_deployment("echo/big", parameters={"x": x}, as_subflow=False).state.is_completed()
    shown = json.loads(cli("deployment", "recommend", "echo/big", "--runs", "5", "--json").stdout)
    assert shown["current"] == [2048, 8192] and shown["runs"] == 3 and shown["applied"] is None
    cpu, memory = shown["proposed"]
    # Memory must come down (echo uses ~60 MiB of 8 GiB). CPU may stay: a run this short is mostly
    # interpreter start-up, whose CPU share on a loaded machine can keep p95 x 1.25 above 1 vCPU.
    assert memory < 8192 and cpu <= 2048 and shown["at_risk"] == 0 and shown["saving_per_run"] > 0
    applied = json.loads(cli("deployment", "recommend", "echo/big", "--apply", "--json").stdout)
    assert applied["applied"] == {"cpu": cpu, "memory": memory}
    assert temp_store.read_deployment_by_name("echo/big").infra_overrides == {"cpu": cpu, "memory": memory}
    after = run_deployment("echo/big", parameters={"x": 9}, as_subflow=False)
    assert after.infrastructure["cpu"] == cpu and after.infrastructure["memory"] == memory
    assert _usage(temp_store, after.id).requested_memory_mib.value == memory
    text = cli("deployment", "recommend", "echo/big").stdout
    assert "right-size echo/big" in text and "past runs would have run out of memory" in text
    from fleetflow.usage.advice import deployment_badge

    assert deployment_badge(temp_store, "echo/big") == text.strip().splitlines()[-1]


@pytest.mark.parametrize("client_backend", ["sqlite"], indirect=True)
def test_recommend_without_history_says_so(temp_store, project):
    deploy(project, "echo", "fresh", infra_overrides={"cpu": 512, "memory": 1024})
    shown = json.loads(cli("deployment", "recommend", "echo/fresh", "--json").stdout)
    assert shown["proposed"] is None and "no completed runs" in shown["summary"]


@pytest.mark.parametrize("client_backend", ["sqlite"], indirect=True)
def test_cost_report_tree_and_inspect_show_usage(temp_store, project, usage_worker, monkeypatch):
    from fleetflow import flow

    monkeypatch.setenv("FLEETFLOW_PROCESS_VCPU_HOUR_PRICE", "3.6")  # 0.001 per vCPU-second
    from fleetflow.settings import reset_settings

    reset_settings()
    deploy(project, "echo", "child", infra_overrides={"cpu": 1024, "memory": 1024})

    @flow
    def pipeline():
        return [run_deployment("echo/child", parameters={"x": i}).result() for i in range(2)]

    pipeline()
    parent = temp_store.read_flow_runs(flow_name="pipeline")[0]
    children = temp_store.read_flow_runs(parent_flow_run_id=parent.id)
    usages = temp_store.read_flow_run_usages([c.id for c in children] + [parent.id])
    assert set(usages) == {c.id for c in children}  # the in-process parent is not measured
    expected = sum(1.0 * 0.001 * max(1, -(-RunUsage.model_validate(usages[c.id]).value("billed_seconds") // 1))
                   for c in children)  # 1 vCPU x rate x whole seconds (no minimum locally)
    report = json.loads(cli("cost", "report", "--since", "1h", "--json").stdout)
    (row,) = report["deployments"]
    assert row["deployment"] == "echo/child" and row["runs"] == 2 and row["measured"] == 2
    assert report["total"] == pytest.approx(expected)
    per_run = json.loads(cli("cost", "report", "--deployment", "echo/child", "--json").stdout)
    assert {r["flow_run_id"] for r in per_run["runs"]} == {c.id for c in children}
    assert "cost per deployment" in cli("cost", "report").stdout
    tree = cli("flow-run", "inspect", parent.id, "--tree").stdout
    assert tree.count("used ") == 2 and "of 1 GiB" in tree and "pipeline cost $" in tree
    rows = json.loads(cli("flow-run", "inspect", parent.id, "--tree", "--json").stdout)
    assert all(r["usage_line"].startswith("used ") for r in rows if r["id"] != parent.id)
    shown = cli("flow-run", "inspect", children[0].id).stdout
    assert "usage and cost" in shown and "getrusage" in shown
    data = json.loads(cli("flow-run", "inspect", children[0].id, "--json").stdout)
    assert data["usage"]["usage"]["peak_memory_mib"]["value"] > 0 and data["usage"]["cost"] > 0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request, api_server, tmp_path):
    url = f"sqlite:///{tmp_path / 'served.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_server").fresh_database()
    store = Orchestrator.create(url)
    api_server.use_store(store)
    yield api_server, store
    store.dispose()


def test_a_run_token_writes_only_its_own_runs_usage(served):
    server, store = served
    _key, secret = store.create_api_key("usage-admin", "admin")
    admin = HTTPClient(server.url, api_key=secret, retry_seconds=0)
    admin.create_work_pool(WorkPool(id="", name="pool"), overwrite=True)
    admin.upsert_deployment(Deployment(id="", name="d", flow_name="f", entrypoint="f.py:f", work_pool_name="pool"))
    mine, other = admin.create_flow_run_from_deployment("f/d"), admin.create_flow_run_from_deployment("f/d")
    as_run = HTTPClient(server.url, api_key=admin.mint_run_token(mine.id), retry_seconds=0)
    record = RunUsage(wall_seconds={"value": 2.0, "source": "test"}).model_dump(mode="json")
    as_run.write_flow_run_usage(mine.id, record)
    with pytest.raises(PermissionDenied):
        as_run.write_flow_run_usage(other.id, record)
    assert as_run.read_flow_run_usage(mine.id)["wall_seconds"]["value"] == 2.0
    with pytest.raises(PermissionDenied):
        as_run.read_flow_run_usages([mine.id])
    assert set(admin.read_flow_run_usages([mine.id, other.id])) == {mine.id}
    with pytest.raises(ObjectNotFound):
        admin.write_flow_run_usage("no-such-run", record)
    as_run.set_flow_run_state(mine.id, st.Running())


@pytest.mark.parametrize("client_backend", ["sqlite"], indirect=True)
def test_an_out_of_memory_run_pushes_the_recommendation_above_its_limit(temp_store, project, usage_worker):
    deploy(project, "hog", "burst", infra_overrides={"cpu": 512, "memory": 1024})
    for _ in range(2):
        assert run_deployment("hog/burst", parameters={"mib": 8}, as_subflow=False).state.is_completed()
    crashed = run_deployment("hog/burst", parameters={"mib": 2048}, as_subflow=False, raise_on_failure=False)
    assert crashed.state.type is st.StateType.CRASHED and "out of memory" in crashed.state.message
    shown = json.loads(cli("deployment", "recommend", "hog/burst", "--json").stdout)
    assert shown["oom_runs"] == 1 and shown["runs"] == 3
    assert shown["proposed"][1] > 1024  # above the limit the burst died at, though the other runs were tiny
    assert "out of memory" in shown["reasons"][0]
