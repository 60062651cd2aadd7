"""Both clients implement every method of OrchestratorAPI with the same signature, and the
embedded store implements each one the embedded client does not override."""

from __future__ import annotations

import inspect

import pytest

from fleetflow.client.embedded import EmbeddedClient
from fleetflow.client.http import HTTPClient
from fleetflow.client.protocol import OrchestratorAPI
from fleetflow.orchestrator import Orchestrator

CLIENT_ONLY = {"mint_run_token", "close"}  # the store has its own spelling (issue_run_token, dispose)


def _api_methods() -> list[str]:
    return [name for name, value in vars(OrchestratorAPI).items() if inspect.isfunction(value) and not name.startswith("_")]


def _shape(fn) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("implementation", [EmbeddedClient, HTTPClient])
def test_every_api_method_is_implemented_with_the_same_signature(implementation):
    methods = _api_methods()
    assert len(methods) > 30
    for name in methods:
        actual = getattr(implementation, name, None) or getattr(Orchestrator, name)
        assert _shape(actual) == _shape(getattr(OrchestratorAPI, name)), (implementation.__name__, name)


def test_the_store_backs_every_method_the_embedded_client_delegates():
    for name in set(_api_methods()) - CLIENT_ONLY - set(vars(EmbeddedClient)):
        assert _shape(getattr(Orchestrator, name)) == _shape(getattr(OrchestratorAPI, name)), name
