"""Which infrastructure a run launches on: the deployment's block (saved or inline) or the
pool's default, with the deployment's and then the run's ``infra_overrides`` merged in.

Used by the worker at launch and by ``run_deployment`` before creating a run (so bad
overrides fail before a run exists), which is why it lives apart from the worker loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..blocks import Block
from ..exceptions import ConfigurationError, ObjectNotFound
from ..orchestrator import schemas
from ..orchestrator.deployment_runs import register_infrastructure_check

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI


def ensure_work_pool(client: OrchestratorAPI, name: str, type: str = "process") -> schemas.WorkPool:
    """Read a pool, creating a process pool on first use (the embedded default)."""
    try:
        return client.read_work_pool(name)
    except ObjectNotFound:
        return client.create_work_pool(schemas.WorkPool(id="", name=name, type=type))


def load_pool_infrastructure(client: OrchestratorAPI, pool: schemas.WorkPool) -> Block:
    """The pool's default infrastructure block, or a plain Process for process pools."""
    if pool.infrastructure_block:
        return Block.load(pool.infrastructure_block, client=client)
    if pool.type != "process":
        raise ConfigurationError(
            f"work pool {pool.name!r} ({pool.type}) has no infrastructure block; "
            f"recreate it with --infrastructure-block", field="infrastructure_block",
        )
    from ..infrastructure import Process

    return Process()


def resolve_infrastructure(client: OrchestratorAPI, deployment: schemas.Deployment, flow_run: schemas.FlowRun) -> Block:
    """Block for a run: deployment's (saved or inline) or the pool's, with overrides merged."""
    from ..blocks.base import get_block_class
    from ..blocks.overrides import apply_overrides

    if deployment.infrastructure_block:
        block = Block.load(deployment.infrastructure_block, client=client)
    elif deployment.infrastructure:
        cls = get_block_class(deployment.infrastructure["type"])
        block = cls.from_document_data(deployment.infrastructure["data"])
    else:
        block = load_pool_infrastructure(client, client.read_work_pool(flow_run.work_pool_name or deployment.work_pool_name))
    merged = apply_overrides(block, deployment.infra_overrides)
    return apply_overrides(merged, flow_run.infra_overrides)


def _check_run_infrastructure(store: Any, deployment: schemas.Deployment, probe: schemas.FlowRun) -> None:
    """The store's check for new runs from deployments: overrides must fit the block."""
    resolve_infrastructure(store, deployment, probe)


register_infrastructure_check(_check_run_infrastructure)
