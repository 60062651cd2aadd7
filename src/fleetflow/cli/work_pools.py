"""``fleetflow work-pool``: create, list, inspect, pause, resume and delete work pools.

A pool pairs a queue of scheduled runs with a default infrastructure block; ``create`` checks
that the block exists and fits the pool's type now, rather than letting the first launch fail.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Group
from rich.text import Text

from ..exceptions import ConfigurationError
from ..states import StateType
from ._output import (
    console,
    fmt_ago,
    fmt_time,
    kv_grid,
    note,
    now,
    open_client,
    panel,
    print_json,
    state_text,
    success,
    table,
)

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

app = typer.Typer(name="work-pool", help="Create, list, inspect, pause, resume and delete work pools.", no_args_is_help=True)

# Which infrastructure block type each pool type launches with.
POOL_BLOCK_TYPES: dict[str, str] = {"process": "process", "ecs": "ecs-task"}
_RUN_SCAN_LIMIT = 100_000


def worker_alive_seconds() -> float:
    """A worker is alive if it heartbeated within three intervals (and never less than 30 s)."""
    from ..settings import get_settings

    return max(30.0, 3 * get_settings().worker_heartbeat_interval)


def is_alive(worker: Any) -> bool:
    return (now() - worker.last_heartbeat).total_seconds() <= worker_alive_seconds()


# ---- create ------------------------------------------------------------------------------------
@app.command("create")
def create(
    name: str = typer.Argument(..., help="Pool name, e.g. 'gpu' or 'default'."),
    pool_type: str = typer.Option("process", "--type", help="process (local subprocesses) or ecs (AWS ECS tasks)."),
    infrastructure_block: Optional[str] = typer.Option(
        None, "--infrastructure-block", "-b", help="Default infrastructure block, 'type/name' (or just the name)."
    ),
    description: Optional[str] = typer.Option(None, "--description", help="Free text shown by inspect."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing pool of this name."),
) -> None:
    """Create a work pool, checking its infrastructure block exists and fits the pool type."""
    from ..orchestrator.schemas import WorkPool

    client = open_client()
    block_ref = validate_pool_block(client, pool_type, infrastructure_block)
    pool = client.create_work_pool(
        WorkPool(id="", name=name, type=pool_type, infrastructure_block=block_ref, description=description),
        overwrite=overwrite,
    )
    block_text = f" using {pool.infrastructure_block}" if pool.infrastructure_block else ""
    success(f"Created {pool.type} work pool {pool.name!r}{block_text}.")
    note(f"Start a worker for it with: fleetflow worker start --pool {pool.name}")


def validate_pool_block(client: OrchestratorAPI, pool_type: str, block_ref: str | None) -> str | None:
    """The normalised 'type/name' of the pool's block; errors for wrong pool or block types.

    A bare name means a block of the pool's own type; a missing block raises the store's
    ObjectNotFound, which lists the names that do exist.
    """
    if pool_type not in POOL_BLOCK_TYPES:
        raise ConfigurationError(
            f"unknown work pool type {pool_type!r}; use one of: {', '.join(POOL_BLOCK_TYPES)}", field="type"
        )
    if not block_ref:
        return None
    expected = POOL_BLOCK_TYPES[pool_type]
    slug, sep, block_name = block_ref.partition("/")
    if not sep:
        slug, block_name = expected, block_ref
    if slug != expected:
        raise ConfigurationError(
            f"a {pool_type} work pool launches with a {expected!r} block, but {block_ref!r} is a {slug!r} block; "
            f"pass --infrastructure-block {expected}/NAME (or --type {_pool_type_for(slug) or '...'})",
            field="infrastructure_block",
        )
    client.read_block_document(slug, block_name)
    return f"{slug}/{block_name}"


def _pool_type_for(block_slug: str) -> str | None:
    return next((p for p, b in POOL_BLOCK_TYPES.items() if b == block_slug), None)


# ---- ls ----------------------------------------------------------------------------------------
@app.command("ls")
def ls(json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List work pools with their block, when a worker last polled, and live workers."""
    client = open_client()
    rows = [_pool_summary(client, pool) for pool in client.read_work_pools()]
    if json_output:
        print_json(rows)
        return
    if not rows:
        note("No work pools. Create one with `fleetflow work-pool create NAME`.")
        return
    tbl = table("NAME", "TYPE", "INFRASTRUCTURE BLOCK", "LAST POLLED", "WORKERS ALIVE", "PAUSED")
    for row in rows:
        tbl.add_row(
            row["name"], row["type"], row["infrastructure_block"] or "-",
            fmt_ago(row["last_polled"]), f"{row['workers_alive']}/{row['workers']}", "yes" if row["is_paused"] else "no",
        )  # fmt: skip
    console().print(tbl)


def _pool_summary(client: OrchestratorAPI, pool: Any) -> dict[str, Any]:
    workers = client.read_workers(pool.name)
    return {
        **pool.model_dump(mode="json"),
        "last_polled": pool.last_polled,
        "workers": len(workers),
        "workers_alive": sum(is_alive(w) for w in workers),
    }


# ---- inspect -----------------------------------------------------------------------------------
@app.command("inspect")
def inspect(
    name: str = typer.Argument(..., help="Pool name."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of panels."),
) -> None:
    """Show a pool: its block, its workers and their heartbeats, and its runs by state."""
    client = open_client()
    pool = client.read_work_pool(name)
    workers = client.read_workers(name)
    counts = run_counts(client, name)
    if json_output:
        print_json(
            {
                "work_pool": pool.model_dump(mode="json"),
                "workers": [{**w.model_dump(mode="json"), "alive": is_alive(w)} for w in workers],
                "runs_by_state": counts,
            }
        )
        return
    console().print(_inspect_renderable(pool, workers, counts))


def run_counts(client: OrchestratorAPI, pool_name: str) -> dict[str, int]:
    """How many of the pool's runs are in each state (all states listed, zeros included)."""
    runs = client.read_flow_runs(work_pool_name=pool_name, limit=_RUN_SCAN_LIMIT)
    counts = Counter(r.state.type.value for r in runs if r.state)
    return {t.value: counts.get(t.value, 0) for t in StateType}


def _inspect_renderable(pool: Any, workers: list[Any], counts: dict[str, int]) -> Group:
    header = kv_grid(
        [
            ("name", pool.name),
            ("type", pool.type),
            ("infrastructure", pool.infrastructure_block or "-"),
            ("description", pool.description or "-"),
            ("concurrency", pool.concurrency_limit if pool.concurrency_limit is not None else "unlimited"),
            ("paused", "yes: no worker claims its runs (`fleetflow work-pool resume`)" if pool.is_paused else "no"),
            ("created", fmt_time(pool.created)),
            ("last polled", f"{fmt_time(pool.last_polled)} ({fmt_ago(pool.last_polled)})" if pool.last_polled else "never"),
        ]
    )
    parts: list[Any] = [panel(header, f"work pool {pool.name}")]
    parts.append(_workers_table(workers) if workers else Text(
        f"No worker has heartbeated; start one with `fleetflow worker start --pool {pool.name}`", style="yellow"
    ))  # fmt: skip
    runs = table("STATE", "RUNS", title="runs by state")
    for state, count in counts.items():
        if count:
            runs.add_row(state_text(state), str(count))
    parts.append(runs if any(counts.values()) else Text("No runs in this pool yet.", style="dim"))
    return Group(*parts)


def _workers_table(workers: list[Any]) -> Any:
    tbl = table("WORKER", "HOST", "PID", "LAST HEARTBEAT", "ALIVE", title="workers")
    for w in workers:
        alive = Text("yes", style="green") if is_alive(w) else Text("no", style="red")
        heartbeat = f"{fmt_time(w.last_heartbeat)} ({fmt_ago(w.last_heartbeat)})"
        tbl.add_row(w.name, w.hostname or "-", str(w.pid or "-"), heartbeat, alive)
    return tbl


# ---- pause / resume ----------------------------------------------------------------------------
@app.command("pause")
def pause(name: str = typer.Argument(..., help="Pool name.")) -> None:
    """Pause a pool: its runs stay SCHEDULED and no worker claims them until it is resumed."""
    pool = open_client().set_work_pool_paused(name, True)
    success(f"Paused work pool {pool.name!r}: no worker claims its runs until `fleetflow work-pool resume {pool.name}`.")


@app.command("resume")
def resume(name: str = typer.Argument(..., help="Pool name.")) -> None:
    """Resume a paused pool: workers claim its scheduled runs again."""
    pool = open_client().set_work_pool_paused(name, False)
    success(f"Resumed work pool {pool.name!r}: workers claim its scheduled runs again.")


# ---- delete ------------------------------------------------------------------------------------
@app.command("delete")
def delete(
    name: str = typer.Argument(..., help="Pool name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a work pool. Runs already scheduled in it stay, but no worker will pick them up."""
    client = open_client()
    client.read_work_pool(name)  # fail with the "did you mean" error before asking
    if not yes:
        waiting = len(client.read_flow_runs(work_pool_name=name, state_types=[StateType.SCHEDULED], limit=_RUN_SCAN_LIMIT))
        note = f" ({waiting} scheduled run(s) in it will not be picked up)" if waiting else ""
        typer.confirm(f"Delete work pool {name!r}{note}?", abort=True)
    client.delete_work_pool(name)
    success(f"Deleted work pool {name!r}.")
