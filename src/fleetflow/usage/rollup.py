"""Cost per run, over a parent's whole tree (the pipeline's cost), and per deployment over a
window. Reads runs and their usage records through the client; the arithmetic is pricing's."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from .model import RunUsage
from .pricing import Cost, estimate, load_prices, rate_for

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

PAGE = 500
MAX_RUNS = 100_000  # a window's report stops there (and says so)


@dataclass
class RunCost:
    """One run's usage (when recorded) and its cost estimate."""

    run: Any
    usage: RunUsage | None
    cost: Cost
    cpu: float | None
    memory: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"flow_run_id": self.run.id, "name": self.run.name, "flow_name": self.run.flow_name,
                "deployment_id": self.run.deployment_id, "state": self.run.state_type.value if self.run.state_type else None,
                "requested_cpu": self.cpu, "requested_memory_mib": self.memory,
                "usage": self.usage.model_dump(mode="json") if self.usage else None,
                "cost": self.cost.amount, "billed_seconds": self.cost.billed_seconds, "cost_basis": self.cost.basis,
                "currency": self.cost.currency}  # fmt: skip


def _duration(run: Any) -> float | None:
    if run.start_time is None or run.end_time is None:
        return None
    return (run.end_time - run.start_time).total_seconds()


def run_cost(run: Any, usage: dict[str, Any] | RunUsage | None, settings: Any = None,
             prices: dict[str, Any] | None = None) -> RunCost:
    """The cost of one run from its usage record, or from its launch record and times when it
    has none (a run killed before it could report, e.g. by the OOM killer)."""
    from ..settings import get_settings

    settings = settings or get_settings()
    prices = prices or load_prices(settings.usage_prices_file)
    record = RunUsage.model_validate(usage) if isinstance(usage, dict) else usage
    infra = run.infrastructure or {}
    if record is not None:
        platform = record.platform.model_dump()
        cpu, memory, seconds = record.value("requested_cpu"), record.value("requested_memory_mib"), record.value("billed_seconds")
    else:
        platform = {"kind": infra.get("kind"), "launch_type": infra.get("launch_type"), "spot": bool(infra.get("spot"))}
        cpu, memory, seconds = infra.get("cpu"), infra.get("memory"), _duration(run)
    rate, basis = rate_for(platform, settings, prices)
    return RunCost(run, record, estimate(cpu, memory, seconds, rate, basis), cpu, memory)


def read_usages(client: OrchestratorAPI, flow_run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The usage records of the runs that have one, by run id, read 1,000 ids at a time."""
    usages: dict[str, dict[str, Any]] = {}
    for start in range(0, len(flow_run_ids), 1000):
        usages.update(client.read_flow_run_usages(flow_run_ids[start:start + 1000]))
    return usages


def costs_for(client: OrchestratorAPI, runs: Iterable[Any]) -> list[RunCost]:
    """Costs of ``runs``, reading their usage records in batches."""
    runs = list(runs)
    usages = read_usages(client, [r.id for r in runs])
    return [run_cost(run, usages.get(run.id)) for run in runs]


def tree_runs(client: OrchestratorAPI, root_id: str) -> list[Any]:
    """The run and all its descendants, depth first."""
    return with_descendants(client, [client.read_flow_run(root_id)])


def with_descendants(client: OrchestratorAPI, runs: Iterable[Any]) -> list[Any]:
    """``runs`` and all their descendants, depth first: one read of children per run (the
    flow-run page starts from the children it already shows, not from the root again)."""
    out, seen, todo = [], set(), list(runs)
    while todo:
        run = todo.pop()
        if run.id in seen:
            continue
        seen.add(run.id)
        out.append(run)
        todo.extend(client.read_flow_runs(parent_flow_run_id=run.id, limit=10_000))
    return out


def total(costs: Iterable[RunCost]) -> tuple[float, int]:
    """(sum of the known amounts, how many runs have no estimate)."""
    known, unknown = 0.0, 0
    for item in costs:
        if item.cost.amount is None:
            unknown += 1
        else:
            known += item.cost.amount
    return known, unknown


def tree_cost(client: OrchestratorAPI, root_id: str) -> tuple[list[RunCost], float, int]:
    """Every run of the tree with its cost, the total, and how many runs have no estimate."""
    costs = costs_for(client, tree_runs(client, root_id))
    return (costs, *total(costs))


def window_runs(client: OrchestratorAPI, *, since: dt.datetime, deployment_id: str | None = None) -> list[Any]:
    """Runs created since ``since`` (of one deployment, or of every deployment), newest first."""
    runs: list[Any] = []
    cursor = None
    from ..orchestrator.runs import page_cursor

    while len(runs) < MAX_RUNS:
        page = client.read_flow_runs(deployment_id=deployment_id, created_after=since, limit=PAGE, cursor=cursor)
        runs.extend(r for r in page if deployment_id or r.deployment_id)
        if len(page) < PAGE:
            break
        cursor = page_cursor(page[-1])
    return runs


def by_deployment(costs: Iterable[RunCost]) -> dict[str, list[RunCost]]:
    grouped: dict[str, list[RunCost]] = {}
    for item in costs:
        grouped.setdefault(item.run.deployment_id or "", []).append(item)
    return grouped


def fargate_equivalent(item: RunCost) -> Cost | None:
    """For a local (Process) run: what the same size and time would cost on Fargate
    (default region, x86), so a laptop run still shows what the size would cost in the cloud."""
    from ..settings import get_settings
    from .pricing import fargate_rate

    kind = item.usage.platform.kind if item.usage else (item.run.infrastructure or {}).get("kind")
    if kind != "process":
        return None
    rate = fargate_rate(load_prices(get_settings().usage_prices_file), None, None)
    seconds = item.usage.value("billed_seconds") if item.usage else _duration(item.run)
    return estimate(item.cpu, item.memory, seconds, rate, rate.basis if rate else "n/a")
