"""One run's usage and cost in words, exactly as the CLI's run tree and the web UI print them:
"used 1.3 of 4 GiB, 0.4 of 2 vCPU" and "$0.0012", with one rule for which runs get a cost.

The rule ("launched"): a run launched on its own infrastructure (a Process or an ECS task)
costs something; a sub-flow run inside its parent's process costs nothing extra, so it gets
no cost text (its parent's cost covers it). The platform of the run's usage record decides
when it has one, else the kind of infrastructure the run was launched on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from .display import cost_text, usage_line
from .rollup import RunCost, read_usages, run_cost

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

IN_PROCESS = (None, "in-process")  # infrastructure kinds of runs that were not launched


@dataclass
class RunLine:
    """One run's measured use and cost, ready to print."""

    item: RunCost
    record: dict[str, Any] | None = None  # the stored usage record, as stored
    line: str | None = None  # 'used 1.3 of 4 GiB, 0.4 of 2 vCPU' (None without a record)
    cost: str | None = None  # '$0.0012', 'free' or 'n/a'; None for a run that was not launched
    warnings: list[str] = field(default_factory=list)


def launched(item: RunCost) -> bool:
    """True for a run launched on its own infrastructure (see the module docstring)."""
    kind = item.usage.platform.kind if item.usage else (item.run.infrastructure or {}).get("kind")
    return kind not in IN_PROCESS


def run_line(item: RunCost, record: dict[str, Any] | None = None) -> RunLine:
    """The texts of one run's cost (pure)."""
    usage = item.usage
    return RunLine(item, record, line=usage_line(usage) if usage else None,
                   cost=cost_text(item.cost) if launched(item) else None,
                   warnings=list(usage.warnings) if usage else [])  # fmt: skip


def run_lines(client: OrchestratorAPI, runs: Iterable[Any]) -> dict[str, RunLine]:
    """Lines by run id, reading the usage records in batches (one query per 1,000 runs)."""
    runs = list(runs)
    usages = read_usages(client, [r.id for r in runs])
    return {run.id: run_line(run_cost(run, usages.get(run.id)), usages.get(run.id)) for run in runs}
