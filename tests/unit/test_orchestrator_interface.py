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


def test_the_http_client_defines_every_api_method_itself_with_the_same_signature():
    """No fallback: each method is on HTTPClient, written out or made from the store's
    signature for the generic ``/ops`` route; a method missing there would fail over HTTP only."""
    methods = _api_methods()
    assert len(methods) > 30
    missing = [name for name in methods if name not in vars(HTTPClient)]
    assert missing == []
    for name in methods:
        assert _shape(vars(HTTPClient)[name]) == _shape(getattr(OrchestratorAPI, name)), name


def test_the_embedded_client_implements_or_delegates_every_api_method_with_the_same_signature():
    for name in _api_methods():
        actual = vars(EmbeddedClient).get(name) or getattr(Orchestrator, name)
        assert _shape(actual) == _shape(getattr(OrchestratorAPI, name)), name


def test_the_store_backs_every_method_the_embedded_client_delegates():
    for name in set(_api_methods()) - CLIENT_ONLY - set(vars(EmbeddedClient)):
        assert _shape(getattr(Orchestrator, name)) == _shape(getattr(OrchestratorAPI, name)), name
