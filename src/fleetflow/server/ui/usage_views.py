"""What a run used and cost, and what size a deployment should have, in the UI's words.

The numbers and sentences are the CLI's (``fleetflow.usage``): the flow-run header says
"used 1.3 of 4 GiB, 0.4 of 2 vCPU" and the estimate, the tree says it per child, and the
deployments page carries the same recommendation text as ``deployment recommend``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ...exceptions import FleetflowError
from ...usage.advice import deployment_badge
from ...usage.display import cost_text, money, usage_line
from ...usage.rollup import costs_for, total, tree_runs

IN_PROCESS = (None, "in-process")


@dataclass
class UsageView:
    """One run's measured use ("used ... of ...") and cost, ready to print."""

    line: str | None = None
    cost: str | None = None
    warnings: list[str] = field(default_factory=list)


def run_usages(store: Any, runs: Iterable[Any]) -> dict[str, UsageView]:
    """Views by run id, reading the usage records in batches (one query per 1,000 runs)."""
    views: dict[str, UsageView] = {}
    for item in costs_for(store, runs):
        kind = item.usage.platform.kind if item.usage else (item.run.infrastructure or {}).get("kind")
        launched = kind not in IN_PROCESS  # a flow run inside its parent's process costs nothing extra
        views[item.run.id] = UsageView(
            line=usage_line(item.usage) if item.usage else None,
            cost=cost_text(item.cost) if launched else None,
            warnings=list(item.usage.warnings) if item.usage else [],
        )
    return views


def pipeline_total(store: Any, root_id: str) -> str | None:
    """'pipeline $0.0123 over 4 runs' ('free' when every run was) for a run with sub-flows; None for a run without."""
    runs = tree_runs(store, root_id)
    if len(runs) < 2:
        return None
    known, unknown = total(costs_for(store, runs))
    text = f"pipeline {money(known) if known else 'free'} over {len(runs)} runs"
    return text + (f" ({unknown} without an estimate)" if unknown else "")


def recommendations(store: Any, deployments: Iterable[Any]) -> dict[str, str]:
    """The right-sizing badge text by deployment id; a deployment the advice cannot read
    (no history, no size) gets the advice's own message, never an error page."""
    badges: dict[str, str] = {}
    for d in deployments:
        try:
            badges[d.id] = deployment_badge(store, f"{d.flow_name}/{d.name}")
        except FleetflowError as exc:
            badges[d.id] = str(exc).split(";")[0]
    return badges
