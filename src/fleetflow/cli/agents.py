"""``fleetflow agent start -q QUEUE [-p POOL]``: Prefect 2's agent command, as a worker.

fleetflow's current form is ``fleetflow worker start --pool POOL``; this command prints that
in one line and starts the same worker. A queue given without a pool names the pool, the
way ``deployment build -q QUEUE`` does.
"""

from __future__ import annotations

from typing import Optional

import typer

from ._output import console, note

app = typer.Typer(help="Prefect 2's agent: starts a worker (the current form is `worker start`).", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """A group even with one command, so `fleetflow agent <command>` reads like Prefect's."""


@app.command("start")
def start(
    work_queue: list[str] = typer.Option([], "-q", "--work-queue", help="Work queue to serve (repeatable)."),
    pool: Optional[str] = typer.Option(None, "-p", "--pool", help="Work pool (default: the queue's name)."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Worker name."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Most runs launched at once."),
) -> None:
    """Start a worker for a work queue (Prefect 2 agents), until SIGTERM/Ctrl-C."""
    import logging

    from ..exceptions import ConfigurationError
    from ..worker import start_worker

    if not pool and len(work_queue) != 1:
        raise ConfigurationError("give one -q QUEUE (it names the pool), or -p POOL with any -q QUEUE")
    target = pool or work_queue[0]
    # Without -p the queue names the pool (as `deployment build -q` does), so serve all of it.
    queues = work_queue if pool else None
    flags = "".join(f" -q {q}" for q in queues or [])
    note(f"`agent start` is Prefect 2's form; the current one is: fleetflow worker start --pool {target}{flags}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)-7s | %(name)s - %(message)s")
    console().print(f"[bold]worker[/] serving pool [cyan]{target}[/] (Ctrl-C to stop)")
    start_worker(target, name=name, limit=limit, queues=queues)
