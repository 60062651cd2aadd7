"""The proof on the example's direct-PostgreSQL path (``create_server = false``): one apply of
examples/ecs-subflows, the flagship pipeline's three ECS sub-flows on it with the store on SQLite
and then on PostgreSQL, one destroy (tests/proof_pipeline.py says what each proof checks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from backends import backend_params
from proof_pipeline import Timeline, run_the_pipeline

if TYPE_CHECKING:
    from terraform_helpers import AppliedExample

# One worker runs this module: its tests share one apply (terraform_helpers.AppliedExample says why).
pytestmark = [pytest.mark.terraform, pytest.mark.aws, pytest.mark.timeout(300), pytest.mark.xdist_group("tf-direct")]


@pytest.mark.parametrize("client_backend", backend_params(["sqlite", "postgres"]))
def test_terraform_to_ecs_subflows_and_back(direct_example: AppliedExample, temp_store, shell_env) -> None:
    timeline = Timeline()
    run_the_pipeline(direct_example, temp_store, timeline, server_store_url=None)
    print(f"\nproof timeline ({timeline.total():.1f}s):\n{timeline.render()}")

