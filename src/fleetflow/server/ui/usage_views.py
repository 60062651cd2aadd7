"""What a run used and cost, and what size a deployment should have, in the UI's words.

The numbers and sentences are the CLI's (``fleetflow.usage``): the flow-run header says
"used 1.3 of 4 GiB, 0.4 of 2 vCPU" and the estimate, the tree says it per child (both from
:func:`fleetflow.usage.lines.run_lines`, as the CLI's run tree), the sub-flows card carries
the pipeline's total, and the deployments page the same recommendation text as
``deployment recommend``.
"""

from __future__ import annotations

from typing import Any, Iterable

from ...usage.advice import deployment_badges
from ...usage.display import money
from ...usage.lines import RunLine, run_lines
from ...usage.rollup import RunCost, costs_for, total, with_descendants

UsageView = RunLine  # .line, .cost and .warnings are what the templates print

__all__ = ["UsageView", "pipeline_total", "recommendations", "run_lines"]


def pipeline_total(store: Any, known: list[RunCost], parents: Iterable[Any]) -> str | None:
    """'pipeline $0.0123 over 4 runs' ('free' when every run was) for a run with sub-flows;
    None for a run without. ``known``: the costs of the run and of all its children, already
    read for the page; ``parents``: those children that have children of their own (only
    their subtrees are read here)."""
    ids = {item.run.id for item in known}
    deeper = [run for run in with_descendants(store, parents) if run.id not in ids]
    costs = known + costs_for(store, deeper)
    if len(costs) < 2:
        return None
    amount, unknown = total(costs)
    text = f"pipeline {money(amount) if amount else 'free'} over {len(costs)} runs"
    return text + (f" ({unknown} without an estimate)" if unknown else "")


def recommendations(store: Any, deployments: Iterable[Any]) -> dict[str, str]:
    """The right-sizing badge text by deployment id, for every deployment in one pass; a
    deployment the advice cannot read (no history, no size) gets the advice's own message."""
    return deployment_badges(store, list(deployments))
