"""``fleetflow worker start``."""

from __future__ import annotations

from typing import Optional

import typer

from ._output import console

app = typer.Typer(help="Start a worker that launches a pool's runs.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Workers claim a pool's scheduled runs and launch them on the pool's infrastructure."""


@app.command()
def start(
    pool: str = typer.Option(..., "--pool", "-p", help="Work pool to serve."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Worker name; default host-pool-<random>. A name held by a live worker is refused."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Most runs launched at once; default for Process pools: one per CPU, within the machine's memory."),
    poll_interval: Optional[float] = typer.Option(None, "--poll-interval", help="Seconds between claims."),
    work_queue: list[str] = typer.Option([], "-q", "--work-queue", help="Only runs of this work queue (repeatable)."),
) -> None:
    """Claim, launch and watch the pool's runs until SIGTERM/Ctrl-C."""
    import logging

    from ..worker import start_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)-7s | %(name)s - %(message)s")
    console().print(f"[bold]worker[/] serving pool [cyan]{pool}[/] (Ctrl-C to stop)")
    start_worker(pool, name=name, limit=limit, poll_interval=poll_interval, queues=work_queue or None)
