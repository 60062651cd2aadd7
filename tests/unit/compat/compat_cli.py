"""CLI helper for the compat unit tests (a plain module, unique name for pytest's rootdir imports)."""

from __future__ import annotations

from typer.testing import CliRunner

from fleetflow.cli import app


def invoke(*args: str, input: str | None = None):
    """Run ``fleetflow *args`` in-process with a wide terminal (tables never fold)."""
    return CliRunner().invoke(app, list(args), input=input, env={"COLUMNS": "200"})
