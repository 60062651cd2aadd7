"""``fleetflow work-queue create|ls|inspect|pause|resume|set|delete``: queues inside pools.

Deployments built with ``-q QUEUE`` put their runs in that queue; ``worker start -q QUEUE``
(or Prefect's ``agent start -q``) serves only those. A paused queue's runs wait; a queue's
concurrency limit caps its active runs; lower priority numbers are claimed first.
"""

from __future__ import annotations

from typing import Optional

import typer

from ._output import console, fmt_time, kv_grid, open_client, plain, print_json, success, table

app = typer.Typer(help="Create, list, pause and resume work queues inside pools.", no_args_is_help=True)

_POOL = typer.Option("default", "-p", "--pool", help="Work pool of the queue.")


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Queue name."),
    pool: str = _POOL,
    priority: int = typer.Option(1, "--priority", min=1, help="Lower numbers are claimed first."),
    limit: Optional[int] = typer.Option(None, "-l", "--limit", min=0, help="Most active runs of the queue at once."),
    description: Optional[str] = typer.Option(None, "--description"),
) -> None:
    """Create a work queue in a pool (the pool is created as a process pool if missing)."""
    from ..deployments import ensure_work_pool

    client = open_client()
    ensure_work_pool(client, pool)
    client.create_work_queue(pool, name, priority=priority, concurrency_limit=limit, description=description)
    success(f"Created work queue {name!r} in work pool {pool!r}.")


@app.command("ls")
def ls(pool: Optional[str] = typer.Option(None, "-p", "--pool", help="Only this pool's queues."),
       as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List work queues."""
    queues = open_client().read_work_queues(pool)
    if as_json:
        return print_json([q.model_dump(mode="json") for q in queues])
    tbl = table("pool", "name", "priority", "concurrency limit", "paused", "created")
    for q in queues:
        tbl.add_row(plain(q.work_pool_name), plain(q.name), str(q.priority),
                    "-" if q.concurrency_limit is None else str(q.concurrency_limit), "yes" if q.is_paused else "no",
                    fmt_time(q.created))
    console().print(tbl)


@app.command("inspect")
def inspect(name: str = typer.Argument(...), pool: str = _POOL, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one work queue."""
    q = open_client().read_work_queue(pool, name)
    if as_json:
        return print_json(q.model_dump(mode="json"))
    console().print(kv_grid([("pool", q.work_pool_name), ("name", q.name), ("priority", str(q.priority)),
                             ("concurrency limit", "-" if q.concurrency_limit is None else str(q.concurrency_limit)),
                             ("paused", "yes" if q.is_paused else "no"), ("description", q.description or "-")]))


@app.command("pause")
def pause(name: str = typer.Argument(...), pool: str = _POOL) -> None:
    """Stop workers from claiming the queue's runs (they wait, SCHEDULED)."""
    open_client().update_work_queue(pool, name, is_paused=True)
    success(f"Paused work queue {name!r} in pool {pool!r}.")


@app.command("resume")
def resume(name: str = typer.Argument(...), pool: str = _POOL) -> None:
    """Let workers claim the queue's runs again."""
    open_client().update_work_queue(pool, name, is_paused=False)
    success(f"Resumed work queue {name!r} in pool {pool!r}.")


@app.command("set-concurrency-limit")
def set_concurrency_limit(name: str = typer.Argument(...), limit: int = typer.Argument(..., min=0), pool: str = _POOL) -> None:
    """Cap how many of the queue's runs are active at once."""
    open_client().update_work_queue(pool, name, concurrency_limit=limit)
    success(f"Concurrency limit of work queue {name!r} set to {limit}.")


@app.command("delete")
def delete(name: str = typer.Argument(...), pool: str = _POOL) -> None:
    """Delete a work queue (its deployments' runs stay in the pool, in a queue of that name)."""
    open_client().delete_work_queue(pool, name)
    success(f"Deleted work queue {name!r} from pool {pool!r}.")
