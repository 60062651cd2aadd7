"""Usage and cost in the CLI's run views: the ``flow-run inspect`` panel, the extra columns of
the run tree ("used 1.3 of 4 GiB, 0.4 of 2 vCPU  $0.0012") and the pipeline total."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._output import kv_grid, panel

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI


def usage_data(client: OrchestratorAPI, run: Any) -> dict[str, Any] | None:
    """The run's usage record and cost estimate, for ``--json``."""
    from ..usage.rollup import run_cost

    record = client.read_flow_run_usage(run.id)
    cost = run_cost(run, record)
    return {"usage": record, "cost": cost.cost.amount, "cost_basis": cost.cost.basis,
            "billed_seconds": cost.cost.billed_seconds, "currency": cost.cost.currency}


def usage_panel(client: OrchestratorAPI, run: Any) -> Any:
    """A panel: used vs requested, where each number came from, the cost and the warnings."""
    from ..usage.display import cost_text, usage_line
    from ..usage.rollup import run_cost

    item = run_cost(run, client.read_flow_run_usage(run.id))
    rows: list[tuple[str, Any]] = []
    if item.usage is not None:
        u = item.usage
        rows.append(("used", usage_line(u)))
        for field, label, unit in (("peak_memory_mib", "peak memory", "MiB"), ("peak_address_space_mib", "peak address space", "MiB"),
                                   ("cpu_seconds", "cpu", "s"), ("peak_cpu", "peak cpu", "vCPU"),
                                   ("wall_seconds", "wall", "s"), ("billed_seconds", "billed time", "s")):  # fmt: skip
            measured = getattr(u, field)
            if measured is not None:
                rows.append((label, f"{measured.value:.2f} {unit}  [dim]({measured.source})[/]"))
        rows.extend(("warning", f"[yellow]{w}[/]") for w in u.warnings)
    else:
        rows.append(("used", "no usage record (measured only for launched runs, by their runner)"))
    rows.append(("cost", f"{cost_text(item.cost)}  [dim]({item.cost.basis})[/]"))
    return panel(kv_grid(rows), "usage and cost")


def attach_usage(client: OrchestratorAPI, rows: list[dict[str, Any]], runs: list[Any]) -> None:
    """Add ``usage``, ``usage_line``, ``peak_memory_mib``, ``cost``, ``cost_text`` and
    ``fargate_cost`` to run-tree rows (``runs``: the rows' flow runs). The texts and the rule
    for which runs get a cost are the web UI's (:func:`fleetflow.usage.lines.run_lines`)."""
    from ..usage.display import cost_text
    from ..usage.lines import run_lines
    from ..usage.rollup import fargate_equivalent

    lines = run_lines(client, runs)
    for row in rows:
        line = lines[row["id"]]
        item = line.item
        row["usage"] = line.record
        row["usage_line"] = line.line
        row["peak_memory_mib"] = item.usage.value("peak_memory_mib") if item.usage else None
        row["cost"] = item.cost.amount
        row["cost_text"] = line.cost
        cloud = fargate_equivalent(item)
        row["fargate_cost"] = cloud.amount if cloud else None
        if cloud and cloud.amount is not None and row["cost_text"]:
            row["cost_text"] += f" (Fargate ~{cost_text(cloud)})"


def tree_total_text(rows: list[dict[str, Any]]) -> str:
    """'pipeline cost $0.0123 (3 runs; 1 without an estimate)'."""
    from ..usage.display import money

    launched = [r for r in rows if r.get("cost_text") is not None]  # only launched runs get a cost text
    known = [r["cost"] for r in launched if r.get("cost") is not None]
    text = f"pipeline cost {money(sum(known)) if known else 'n/a'} ({len(launched)} launched runs"
    missing = len(launched) - len(known)
    text += f"; {missing} without an estimate)" if missing else ")"
    cloud = [r["fargate_cost"] for r in launched if r.get("fargate_cost") is not None]
    if cloud:
        text += f"; the same sizes on Fargate ~{money(sum(cloud))}"
    return text
