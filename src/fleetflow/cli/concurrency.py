"""``fleetflow concurrency-limit create|ls|inspect|delete``: tag-based task concurrency.

``create TAG N`` lets at most N task runs tagged TAG run at once, across every process
sharing the store (the engine takes a slot in the store before a tagged task runs).
"""

from __future__ import annotations

import typer

from ._output import console, fmt_time, kv_grid, open_client, plain, print_json, success, table

app = typer.Typer(help="Limit how many task runs with a tag run at once.", no_args_is_help=True)


@app.command("create")
def create(tag: str = typer.Argument(..., help="Task tag."),
           concurrency_limit: int = typer.Argument(..., min=0, help="Most task runs with the tag running at once.")) -> None:
    """Create (or change) the limit of a tag."""
    limit = open_client().create_concurrency_limit(tag, concurrency_limit)
    success(f"Created concurrency limit with properties: tag={limit.tag!r}, concurrency_limit={limit.concurrency_limit}")


@app.command("ls")
def ls(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the limits and how many slots are taken."""
    limits = open_client().read_concurrency_limits()
    if as_json:
        return print_json([c.model_dump(mode="json") for c in limits])
    tbl = table("tag", "concurrency limit", "active task runs", "created")
    for c in limits:
        tbl.add_row(plain(c.tag), str(c.concurrency_limit), str(len(c.active_slots)), fmt_time(c.created))
    console().print(tbl)


@app.command("inspect")
def inspect(tag: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one limit and the task runs holding its slots."""
    from ..exceptions import ObjectNotFound

    found = [c for c in open_client().read_concurrency_limits() if c.tag == tag]
    if not found:
        raise ObjectNotFound(f"no concurrency limit for tag {tag!r}; create one with "
                             f"`fleetflow concurrency-limit create {tag} N`", kind="concurrency-limit", name=tag)
    c = found[0]
    if as_json:
        return print_json(c.model_dump(mode="json"))
    console().print(kv_grid([("tag", c.tag), ("concurrency limit", str(c.concurrency_limit)),
                             ("active task runs", ", ".join(c.active_slots) or "-"), ("created", fmt_time(c.created))]))


@app.command("delete")
def delete(tag: str = typer.Argument(...)) -> None:
    """Remove the limit of a tag."""
    open_client().delete_concurrency_limit(tag)
    success(f"Deleted concurrency limit set on the tag: {tag}")
