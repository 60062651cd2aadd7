"""``fleetflow deployment recommend NAME``: the size a deployment's runs should have had, and
``--apply`` to make the next run use it (through the same override validation as ``apply()``)."""

from __future__ import annotations

from typing import Any

import typer

from ..exceptions import ConfigurationError
from ._output import console, kv_grid, open_client, panel, print_json, success


def parse_headroom(text: str) -> float:
    """'25%' or '0.25' -> 0.25."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigurationError(f"--headroom {text!r} is not a percentage like 25% (or a fraction like 0.25)",
                                 field="headroom") from None
    if not 0 <= value <= 10:
        raise ConfigurationError(f"--headroom {text!r} must be between 0% and 1000%", field="headroom")
    return value


def recommend(
    name: str = typer.Argument(..., help="flow-name/deployment-name"),
    headroom: str = typer.Option("25%", "--headroom", help="Margin above the p95 peak, e.g. 25%."),
    runs: int = typer.Option(20, "--runs", min=1, max=1000, help="How many of the last completed runs to use."),
    do_apply: bool = typer.Option(False, "--apply", help="Set the proposed cpu/memory in the deployment's infra_overrides."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Propose the smallest valid Fargate cpu/memory covering p95 usage x (1 + headroom)."""
    from ..usage.advice import recommend_deployment
    from ..usage.recommend import recommendation_summary

    client = open_client()
    deployment, rec = recommend_deployment(client, name, headroom=parse_headroom(headroom), runs=runs)
    applied = _apply(client, deployment, rec) if do_apply and rec.changes else None
    if json_output:
        print_json({"deployment": deployment.full_name, **_data(rec), "summary": recommendation_summary(rec),
                    "applied": applied})
        return
    console().print(panel(kv_grid(_rows(rec)), f"right-size {deployment.full_name}"))
    console().print(recommendation_summary(rec))
    if applied:
        success(f"applied: {deployment.full_name} infra_overrides now {applied}; the next run uses it")
    elif do_apply and rec.proposed is not None:
        console().print("nothing to apply: the deployment already has the proposed size")


def _data(rec: Any) -> dict[str, Any]:
    return {"current": list(rec.current) if rec.current else None, "proposed": list(rec.proposed) if rec.proposed else None,
            "runs": rec.runs, "p95_memory_mib": rec.p95_memory_mib, "p95_cpu": rec.p95_cpu,
            "need_memory_mib": rec.need_memory_mib, "need_cpu_units": rec.need_cpu_units, "oom_runs": rec.oom_runs,
            "at_risk": rec.at_risk, "saving_per_run": rec.saving_per_run, "runs_per_month": rec.runs_per_month,
            "saving_per_month": rec.saving_per_month, "price_basis": rec.price_basis, "reasons": rec.reasons,
            "message": rec.message}  # fmt: skip


def _rows(rec: Any) -> list[tuple[str, Any]]:
    size = lambda s: f"cpu {s[0]} / memory {s[1]} MiB" if s else "-"  # noqa: E731
    rows: list[tuple[str, Any]] = [("today", size(rec.current)), ("proposed", size(rec.proposed)),
                                   ("runs used", str(rec.runs))]
    if rec.p95_memory_mib is not None:
        rows.append(("p95 peak memory", f"{rec.p95_memory_mib:.0f} MiB (need {rec.need_memory_mib:.0f} with headroom)"))
    if rec.p95_cpu is not None:
        rows.append(("p95 peak cpu", f"{rec.p95_cpu:.2f} vCPU (need {rec.need_cpu_units:.0f} units with headroom)"))
    if rec.saving_per_run is not None:
        month = f", ${rec.saving_per_month:.2f}/month" if rec.saving_per_month is not None else ""
        rows.append(("saving", f"${rec.saving_per_run:.6f} per run{month} ({rec.price_basis})"))
    rows.append(("risk", f"{rec.at_risk} of {rec.runs} past runs would have run out of memory"))
    rows.extend(("note", reason) for reason in rec.reasons)
    return rows


def _apply(client: Any, deployment: Any, rec: Any) -> dict[str, Any]:
    """New overrides, checked against the deployment's infrastructure exactly as a run's are."""
    from ..orchestrator.schemas import FlowRun
    from ..worker.resolve import resolve_infrastructure

    overrides = {**(deployment.infra_overrides or {}), "cpu": rec.proposed[0], "memory": rec.proposed[1]}
    updated = deployment.model_copy(update={"infra_overrides": overrides})
    probe = FlowRun(id="", name="", flow_name=deployment.flow_name, work_pool_name=deployment.work_pool_name)
    resolve_infrastructure(client, updated, probe)  # raises InvalidOverrideError / FargateSizeError
    client.upsert_deployment(updated)
    return overrides
