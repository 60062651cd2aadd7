"""The one rule for which runs get a cost text (``fleetflow.usage.lines``), shared by the CLI's
run tree and the web UI: launched runs (Process, ECS) do, runs inside their parent's process
do not; the usage record's platform decides when there is one."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from fleetflow.usage.lines import launched, run_line
from fleetflow.usage.rollup import run_cost

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _run(kind: str | None, **infra) -> SimpleNamespace:
    infrastructure = {"kind": kind, **infra} if kind else {}
    return SimpleNamespace(id=f"run-{kind}", name="r", flow_name="f", deployment_id=None, state_type=None,
                           infrastructure=infrastructure, start_time=T0, end_time=T0 + dt.timedelta(seconds=120))  # fmt: skip


def _record(kind: str) -> dict:
    m = lambda v: {"value": v, "source": "test"}  # noqa: E731
    return {"peak_memory_mib": m(512.0), "avg_cpu": m(0.5), "billed_seconds": m(120.0), "wall_seconds": m(120.0), "requested_cpu": m(1024),
            "requested_memory_mib": m(2048), "platform": {"kind": kind, "launch_type": "FARGATE", "region": "us-east-1"},
            "warnings": ["w1"]}  # fmt: skip


def test_an_ecs_run_with_a_record_gets_its_usage_line_and_cost():
    line = run_line(run_cost(_run("ecs", cpu=1024, memory=2048), _record("ecs")), _record("ecs"))
    assert line.line == "used 0.5 of 2 GiB, 0.5 of 1 vCPU" and line.cost.startswith("$") and line.warnings == ["w1"]
    assert line.record == _record("ecs") and line.item.cost.amount > 0


def test_runs_inside_their_parents_process_get_no_cost_text():
    for run in (_run(None), _run("in-process")):
        item = run_cost(run, None)
        assert launched(item) is False
        assert run_line(item).cost is None and run_line(item).line is None


def test_a_launched_run_without_a_record_is_priced_from_its_launch():
    item = run_cost(_run("ecs", cpu=1024, memory=2048), None)
    assert launched(item) and run_line(item).cost.startswith("$") and run_line(item).line is None
    process = run_cost(_run("process", cpu=1024, memory=2048), None)
    assert launched(process) and run_line(process).cost == "free"  # the local rate is unset by default


def test_the_usage_records_platform_decides_over_the_runs_infrastructure():
    item = run_cost(_run(None), _record("ecs"))  # e.g. a launch record not kept on the run
    assert launched(item) and run_line(item).cost.startswith("$")
