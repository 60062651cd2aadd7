"""Right-sizing a stored deployment: read its last runs and their usage records, then
:func:`.recommend.recommend`. Used by ``fleetflow deployment recommend`` and the UI badge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import FleetflowError
from ..states import StateType
from .fit import limited_peak_mib
from .model import RunUsage
from .pricing import Rate, fargate_rate, load_prices
from .rollup import read_usages
from .recommend import Observation, Recommendation, recommend, recommendation_summary

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

_DAY = 86_400.0


def is_oom(run: Any) -> bool:
    state = run.state
    return bool(state and state.type is StateType.CRASHED and "out of memory" in (state.message or "").lower())


def observation(run: Any, usage: dict[str, Any] | None) -> Observation:
    record = RunUsage.model_validate(usage) if usage else None
    infra = run.infrastructure or {}
    if record is None:
        return Observation(None, None, infra.get("cpu"), infra.get("memory"), oom=is_oom(run))
    return Observation(limited_peak_mib(record), record.value("peak_cpu"),
                       record.value("requested_cpu") or infra.get("cpu"),
                       record.value("requested_memory_mib") or infra.get("memory"),
                       oom=is_oom(run), billed_seconds=record.value("billed_seconds"))


ADVICE_STATES = (StateType.COMPLETED, StateType.CRASHED)


def last_runs(client: OrchestratorAPI, deployment_id: str, runs: int) -> list[Any]:
    """The last ``runs`` completed or out-of-memory runs, newest first."""
    found = client.read_flow_runs(deployment_id=deployment_id, state_types=list(ADVICE_STATES), limit=candidates(runs))
    return kept_runs(found, runs)


def candidates(runs: int) -> int:
    """How many COMPLETED/CRASHED runs to read for ``runs`` kept ones (most crashes are not OOM)."""
    return max(runs * 3, runs)


def kept_runs(found: list[Any], runs: int) -> list[Any]:
    """The completed and out-of-memory runs among ``found`` (newest first), at most ``runs``."""
    return [r for r in found if r.state_type is StateType.COMPLETED or is_oom(r)][:runs]


def current_size(deployment: Any, runs: list[Any]) -> tuple[int, int] | None:
    """Today's size: the deployment's overrides, else what its latest run was launched with."""
    overrides = deployment.infra_overrides or {}
    cpu, memory = overrides.get("cpu"), overrides.get("memory")
    for run in runs:
        cpu = cpu or (run.infrastructure or {}).get("cpu")
        memory = memory or (run.infrastructure or {}).get("memory")
    return (int(cpu), int(memory)) if cpu and memory else None


def runs_per_month(runs: list[Any]) -> float | None:
    created = sorted(r.created for r in runs if r.created)
    if len(created) < 2 or created[-1] <= created[0]:
        return None
    return (len(created) - 1) / (created[-1] - created[0]).total_seconds() * 30 * _DAY


def pricing_of(usages: list[dict[str, Any]]) -> tuple[Rate, str]:
    """The Fargate rate of the runs' platform (region, arch, Spot); us-east-1 x86 prices for
    runs that were not on Fargate (a Process run is priced as if it ran there)."""
    from ..settings import get_settings

    settings = get_settings()
    prices = load_prices(settings.usage_prices_file)
    platform = (RunUsage.model_validate(usages[0]).platform if usages else None)
    on_fargate = platform is not None and platform.kind == "ecs"
    rate = fargate_rate(prices, platform.region if on_fargate else None, platform.arch if on_fargate else None,
                        spot=bool(on_fargate and platform.spot), spot_discount=settings.fargate_spot_discount)
    if rate is None:
        rate = fargate_rate(prices, None, None)
    assert rate is not None  # the shipped file always has the default region
    return rate, rate.basis if on_fargate else f"as if on {rate.basis}"


def recommend_deployment(client: OrchestratorAPI, name: str, *, headroom: float = 0.25,
                         runs: int = 20) -> tuple[Any, Recommendation]:
    """(the deployment, the recommendation) for 'flow/deployment'."""
    deployment = client.read_deployment_by_name(name)
    recent = last_runs(client, deployment.id, runs)
    usages = client.read_flow_run_usages([r.id for r in recent]) if recent else {}
    return deployment, recommend_from(deployment, recent, usages, headroom=headroom)


def recommend_from(deployment: Any, recent: list[Any], usages: dict[str, dict[str, Any]], *,
                   headroom: float = 0.25) -> Recommendation:
    """The recommendation from the deployment's last runs (newest first) and their usage records."""
    observations = [observation(r, usages.get(r.id)) for r in recent]
    rate, basis = pricing_of([usages[r.id] for r in recent if r.id in usages])
    return recommend(observations, current_size(deployment, recent), headroom=headroom, rate=rate,
                     runs_per_month=runs_per_month(recent), price_basis=basis)


def deployment_badge(client: OrchestratorAPI, name: str, *, runs: int = 20) -> str:
    """The recommendation text for the deployments page's badge (same text as the CLI's summary)."""
    return recommendation_summary(recommend_deployment(client, name, runs=runs)[1])


def deployment_badges(store: Any, deployments: list[Any], *, runs: int = 20) -> dict[str, str]:
    """:func:`deployment_badge` of many deployments by id, in one pass: one query for the last
    runs of them all (the store's ``recent_runs_of_deployments``, COMPLETED and CRASHED only)
    and one usage read per 1,000 of those runs, instead of three queries per deployment. A
    deployment the advice cannot read (no history, no size) gets the advice's own message."""
    found = store.recent_runs_of_deployments([d.id for d in deployments], per=candidates(runs),
                                             state_types=list(ADVICE_STATES))  # fmt: skip
    recent = {d.id: kept_runs(found.get(d.id, []), runs) for d in deployments}
    usages = read_usages(store, [r.id for kept in recent.values() for r in kept])
    badges: dict[str, str] = {}
    for d in deployments:
        try:
            badges[d.id] = recommendation_summary(recommend_from(d, recent[d.id], usages))
        except FleetflowError as exc:
            badges[d.id] = str(exc).split(";")[0]
    return badges
