"""``fleetflow cost report``: what launched runs cost, per deployment (or per run of one
deployment) over a window, with totals. Estimates: requested size x Fargate's published
prices (see fleetflow/usage/fargate_prices.py), local Process runs free unless priced."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Optional

import typer
from rich.table import Table

from ..exceptions import ConfigurationError
from ._output import console, open_client, print_json

app = typer.Typer(help="Cost estimates of launched runs.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Cost estimates of launched runs (requested size x published prices)."""
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """'7d', '12h', '30m', '2w' -> that long before now; or an ISO date/time."""
    now = now or dt.datetime.now(dt.timezone.utc)
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", text or "")
    if found:
        return now - dt.timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)])
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(f"--since {text!r} is not a duration like 7d, 12h, 30m, 2w or an ISO date "
                                 "like 2026-11-01", field="since") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _summary(name: str, items: list[Any]) -> dict[str, Any]:
    from ..usage.rollup import total

    amount, unknown = total(items)
    peaks = [i.usage.value("peak_memory_mib") for i in items if i.usage and i.usage.value("peak_memory_mib")]
    return {"deployment": name, "runs": len(items), "measured": sum(1 for i in items if i.usage),
            "cost": amount, "runs_without_estimate": unknown,
            "billed_seconds": sum(i.cost.billed_seconds or 0 for i in items),
            "max_peak_memory_mib": max(peaks) if peaks else None,
            "requested_memory_mib": items[0].memory if items else None, "requested_cpu": items[0].cpu if items else None}


@app.command("report")
def report(
    deployment: Optional[str] = typer.Option(None, "--deployment", "-d", help="flow-name/deployment-name: one row per run."),
    since: str = typer.Option("7d", "--since", help="Window: 7d, 12h, 30m, 2w or an ISO date."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Cost per deployment (or per run of --deployment) over the window, and the total."""
    from ..usage.display import money
    from ..usage.rollup import MAX_RUNS, by_deployment, costs_for, total, window_runs

    client = open_client()
    start = parse_since(since)
    dep = client.read_deployment_by_name(deployment) if deployment else None
    costs = costs_for(client, window_runs(client, since=start, deployment_id=dep.id if dep else None))
    amount, unknown = total(costs)
    if dep is not None:
        data = {"since": start, "deployment": dep.full_name, "runs": [c.as_dict() for c in costs],
                "total": amount, "runs_without_estimate": unknown, "currency": "USD"}
    else:
        names = {d.id: d.full_name for d in client.read_deployments()}
        data = {"since": start, "deployments": [_summary(names.get(k, k or "-"), v) for k, v in by_deployment(costs).items()],
                "total": amount, "runs_without_estimate": unknown, "currency": "USD"}
    if json_output:
        print_json(data)
        return
    console().print(_runs_table(costs) if dep is not None else _deployments_table(data["deployments"]))
    extra = f" ({unknown} runs without an estimate)" if unknown else ""
    if len(costs) >= MAX_RUNS:
        extra += f"; only the newest {MAX_RUNS} runs were read, narrow --since"
    console().print(f"[bold]total[/] {money(amount)} over {len(costs)} runs since {start:%Y-%m-%d %H:%M} UTC{extra}")


def _size(cpu: float | None, memory: float | None) -> str:
    return f"{int(cpu) if cpu else '-'} / {int(memory) if memory else '-'}"


def _deployments_table(rows: list[dict[str, Any]]) -> Table:
    from ..usage.display import money

    table = Table(title="cost per deployment")
    for column in ("deployment", "runs", "measured", "size (cpu / MiB)", "max peak MiB", "billed", "cost", "per run"):
        table.add_column(column, justify="left" if column == "deployment" else "right")
    for r in sorted(rows, key=lambda r: -r["cost"]):
        size = _size(r["requested_cpu"], r["requested_memory_mib"])
        peak = f"{r['max_peak_memory_mib']:.0f}" if r["max_peak_memory_mib"] else "-"
        per_run = money(r["cost"] / r["runs"]) if r["runs"] else "-"
        table.add_row(r["deployment"], str(r["runs"]), str(r["measured"]), size, peak,
                      f"{r['billed_seconds']:.0f}s", money(r["cost"]), per_run)
    return table


def _runs_table(costs: list[Any]) -> Table:
    from ..usage.display import cost_text, usage_line

    table = Table(title="cost per run")
    for column in ("run", "state", "size (cpu / MiB)", "used", "billed", "cost", "basis"):
        table.add_column(column)
    for c in costs:
        used = usage_line(c.usage) if c.usage else "-"
        billed = f"{c.cost.billed_seconds:.0f}s" if c.cost.billed_seconds is not None else "-"
        table.add_row(f"{c.run.name} [{c.run.id[:8]}]", c.run.state_type.value if c.run.state_type else "-",
                      _size(c.cpu, c.memory), used, billed, cost_text(c.cost), c.cost.basis)
    return table
