"""Shared helpers for the CLI tests (a plain module: conftest is someone else's file)."""

from __future__ import annotations

from typer.testing import CliRunner

from fleetflow.cli import app


def invoke(*args: str, input: str | None = None):
    """Run ``fleetflow *args`` in-process; the result has .exit_code, .output, .stdout, .stderr."""
    # A fixed, wide width: pytest-xdist workers export COLUMNS=80, which would fold table cells.
    return CliRunner().invoke(app, list(args), input=input, env={"COLUMNS": "200"})


def assert_one_line_error(result, *fragments: str) -> None:
    """A deliberate error: exit 1, one 'Error: ...' line on stderr, never a traceback."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
