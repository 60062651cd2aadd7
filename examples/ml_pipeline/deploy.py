"""Register the three sub-flow deployments, each with its own size (cpu units / MiB).

On the embedded default each runs as a local process; with ``--ecs`` the same deployments use
the saved ECSTask and S3 blocks (see docs/aws.md).
"""

from __future__ import annotations

from pathlib import Path

from fleetflow.deployments import Deployment

from flows import fetch_data, preprocess, train

HERE = Path(__file__).resolve().parent
POOL = "ml-pool"
SIZES = {
    "fetch": (fetch_data, {"cpu": 1024, "memory": 2048}),
    "preprocess": (preprocess, {"cpu": 512, "memory": 1024}),
    "train": (train, {"cpu": 2048, "memory": 4096}),
}


def deploy(pool: str = POOL, storage=None, infrastructure=None) -> list[str]:
    ids = []
    for name, (flow_obj, size) in SIZES.items():
        deployment = Deployment.build_from_flow(
            flow_obj, name, path=str(HERE), work_pool_name=pool, infra_overrides=size,
            storage=storage, infrastructure=infrastructure,
        )
        ids.append(deployment.apply())
    return ids


def deploy_ecs(prefix: str = "fleetflow") -> list[str]:
    """The same three deployments on ECS: blocks as saved by `fleetflow aws register-blocks`."""
    from fleetflow.aws import S3
    from fleetflow.client import get_client

    pool = next(p.name for p in get_client().read_work_pools() if p.infrastructure_block == f"ecs-task/{prefix}-ecs")
    return deploy(pool=pool, storage=S3.load(f"{prefix}-code"))


if __name__ == "__main__":
    import sys

    for i in deploy_ecs() if "--ecs" in sys.argv else deploy():
        print("applied", i)
