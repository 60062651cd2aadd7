"""Chaos suite fixtures: a marker-writing project and short leases.

Each scenario appends one row (lost / executed twice / stuck / time to settle) to the chaos
table (tests/chaos_table.py), which tests/conftest.py prints at the end of the session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos_helpers import CHAOS_ENV, make_project


@pytest.fixture
def chaos_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from fleetflow.settings import reset_settings

    for key, value in CHAOS_ENV.items():
        monkeypatch.setenv(key, value)
    reset_settings()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path
