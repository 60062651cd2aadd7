"""Fixtures for end-to-end tests on moto's server: the server, a clean AWS environment and
the test-side ECS emulator (``tests/ecs_emulator.py``) that runs the tasks launched on it.

Thin wrappers over ``tests/aws_server.py``, like ``tests/integration/aws/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from aws_server import MotoServer, use_dummy_aws_env
from ecs_emulator import ECSEmulator
from fleetflow.aws.credentials import clear_client_cache

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server per test session (per xdist worker), on a free port."""
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[MotoServer]:
    """Dummy AWS keys and region in the environment, an empty moto, and no cached clients."""
    use_dummy_aws_env(monkeypatch, tmp_path)
    moto_server.reset()
    clear_client_cache()
    yield moto_server
    clear_client_cache()


@pytest.fixture
def ecs_emulator(aws_env: MotoServer) -> Iterator[ECSEmulator]:
    """A running emulator on the test's (empty) moto; every process it started ends at teardown."""
    with ECSEmulator(aws_env.url, REGION, poll_interval=0.05) as emulator:
        yield emulator
