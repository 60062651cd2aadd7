"""Chaos suite fixtures: a marker-writing project, short leases, and the summary table.

Each scenario appends one row (lost / executed twice / stuck / time to settle) to a file
named by FLEETFLOW_CHAOS_TABLE; the table is printed at the end of the session.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from chaos_helpers import CHAOS_ENV, format_table, make_project


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and "FLEETFLOW_CHAOS_TABLE" not in os.environ:
        fd, path = tempfile.mkstemp(prefix="fleetflow-chaos-", suffix=".jsonl")
        os.close(fd)
        os.environ["FLEETFLOW_CHAOS_TABLE"] = path  # xdist workers inherit it
        config._fleetflow_chaos_table = path  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    path = getattr(config, "_fleetflow_chaos_table", None)
    if not path or not os.path.exists(path):
        return
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    os.unlink(path)
    if rows:
        terminalreporter.write_sep("=", "chaos: runs lost / executed twice / stuck")
        terminalreporter.write_line(format_table(rows))


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
