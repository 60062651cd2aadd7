"""The embedded Orchestrator implements every method of OrchestratorAPI with the same
signature, so the engine can hold either it or the (future) HTTP client."""

from __future__ import annotations

import inspect

from fleetflow.orchestrator import Orchestrator, OrchestratorAPI


def _api_methods() -> list[str]:
    return [name for name, value in vars(OrchestratorAPI).items() if inspect.isfunction(value) and not name.startswith("_")]


def test_every_api_method_is_implemented_with_the_same_signature():
    methods = _api_methods()
    assert len(methods) > 25
    for name in methods:
        expected = inspect.signature(getattr(OrchestratorAPI, name))
        actual = inspect.signature(getattr(Orchestrator, name))
        assert [(p.name, p.kind, p.default) for p in actual.parameters.values()] == [
            (p.name, p.kind, p.default) for p in expected.parameters.values()
        ], name
