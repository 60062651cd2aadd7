"""``fleetflow scheduler``: turn deployment schedules into SCHEDULED runs."""

from __future__ import annotations

import typer

from ._output import open_client

app = typer.Typer(help="Create runs for deployments with schedules.", invoke_without_command=True)


@app.callback()
def scheduler(
    interval: float = typer.Option(5.0, "--interval", help="Seconds between scheduling passes."),
    once: bool = typer.Option(False, "--once", help="One pass, then exit."),
) -> None:
    """Materialise the next runs of every scheduled deployment (safe to run twice)."""
    from ..scheduler import run_scheduler

    run_scheduler(open_client(), interval=interval, once=once)
