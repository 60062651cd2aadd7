"""The worker's sweep of leftover per-run token secrets (ECS launches over HTTP).

A worker deletes a run's token secret when it sees the run's task stop. A run that ends while
no worker watches its task -- its worker was killed and the runner kept the lease, so the new
worker never re-attached -- would leave its secret behind for ever. So every
``run_token_sweep_interval`` a worker over HTTP asks its pool's launcher for one bounded page
of token secrets in the pool block's account and region and deletes those of runs that are
final in this store (see :mod:`fleetflow.aws.run_token_secrets`). Runs the store does not know
are left alone: they may belong to another fleetflow deployment in the same account.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any, Iterable

from ..exceptions import FleetflowError, ObjectNotFound
from .offload import off_loop
from .resolve import load_pool_infrastructure

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

log = logging.getLogger("fleetflow.worker")


def final_since(client: OrchestratorAPI, run_ids: Iterable[str]) -> dict[str, dt.datetime]:
    """Run id -> when it became final, for those of ``run_ids`` that are final in this store."""
    ended: dict[str, dt.datetime] = {}
    for run_id in run_ids:
        try:
            run = client.read_flow_run(run_id)
        except (ObjectNotFound, FleetflowError):
            continue  # not ours (or unreadable now): never delete on a guess
        if run.state is not None and run.state.is_final:
            ended[run_id] = run.state.timestamp
    return ended


async def sweep_run_tokens(client: OrchestratorAPI, pool: Any, launcher_for: Any, *, limit: int) -> list[str]:
    """One sweep with the pool's infrastructure block; the runs whose secret went. A launcher
    without run-token secrets (``Process``) sweeps nothing; AWS errors are logged, not raised."""
    try:
        block = await off_loop(load_pool_infrastructure, client, pool)
        sweep = getattr(launcher_for(block), "sweep_run_tokens", None)
        if sweep is None:
            return []
        return await sweep(block, lambda ids: off_loop(final_since, client, ids), limit=limit)
    except FleetflowError as exc:  # e.g. no secretsmanager:ListSecrets: the secrets expire with their runs anyway
        log.warning("could not sweep the run-token secrets of pool %s: %s", getattr(pool, "name", pool), exc)
        return []
