"""Fixtures for end-to-end tests on moto's server: the server, a clean AWS environment and
the test-side ECS emulator (``tests/ecs_emulator.py``) that runs the tasks launched on it.

``moto_server`` and ``aws_env`` are the same fixtures as in ``tests/integration/aws/conftest.py``:
generator functions of ``tests/aws_server.py``, registered here with ``pytest.fixture``.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from aws_server import MotoServer, aws_env_fixture, moto_server_fixture
from ecs_emulator import ECSEmulator

REGION = "us-east-1"

moto_server = pytest.fixture(moto_server_fixture, scope="session", name="moto_server")
aws_env = pytest.fixture(aws_env_fixture, name="aws_env")


@pytest.fixture
def ecs_emulator(aws_env: MotoServer) -> Iterator[ECSEmulator]:
    """A running emulator on the test's (empty) moto; every process it started ends at teardown."""
    with ECSEmulator(aws_env.url, REGION, poll_interval=0.05) as emulator:
        yield emulator
