"""Fixtures for tests against a real moto server (thin wrappers over ``tests/aws_server.py``).

``moto_server`` and ``aws_env`` are generator functions of ``aws_server.py`` registered with
``pytest.fixture``; other directories (e.g. ``tests/e2e``) register the same ones::

    from aws_server import aws_env_fixture, moto_server_fixture

    moto_server = pytest.fixture(moto_server_fixture, scope="session", name="moto_server")
    aws_env = pytest.fixture(aws_env_fixture, name="aws_env")

Subprocesses (launched flow runs) reach the server with ``aws_server.server_env(url)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aws_server import MotoServer, aws_env_fixture, create_bucket, credentials_for, moto_server_fixture
from fleetflow.aws.credentials import AwsCredentials

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything in this folder needs moto's server: mark it ``aws``."""
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.aws)


moto_server = pytest.fixture(moto_server_fixture, scope="session", name="moto_server")
aws_env = pytest.fixture(aws_env_fixture, name="aws_env")


@pytest.fixture
def aws_credentials(aws_env: MotoServer) -> AwsCredentials:
    """An AwsCredentials block pointing at the moto server through ``endpoint_url``."""
    return credentials_for(aws_env.url)


@pytest.fixture
def bucket(aws_env: MotoServer) -> str:
    """An empty bucket on the moto server."""
    name = "fleetflow-test"
    create_bucket(aws_env.url, name)
    return name
