"""Fixtures for tests against a real moto server (thin wrappers over ``tests/aws_server.py``).

Other directories (e.g. ``tests/e2e``) wrap the same helpers in their own conftest, e.g.::

    from aws_server import MotoServer, use_dummy_aws_env

    @pytest.fixture(scope="session")
    def moto_server():
        with MotoServer() as server:
            yield server

Subprocesses (launched flow runs) reach the server with ``aws_server.server_env(url)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from aws_server import MotoServer, create_bucket, credentials_for, use_dummy_aws_env
from fleetflow.aws.credentials import AwsCredentials, clear_client_cache

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything in this folder needs moto's server: mark it ``aws``."""
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.aws)


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
def aws_credentials(aws_env: MotoServer) -> AwsCredentials:
    """An AwsCredentials block pointing at the moto server through ``endpoint_url``."""
    return credentials_for(aws_env.url)


@pytest.fixture
def bucket(aws_env: MotoServer) -> str:
    """An empty bucket on the moto server."""
    name = "fleetflow-test"
    create_bucket(aws_env.url, name)
    return name
