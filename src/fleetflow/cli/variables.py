"""``fleetflow variable set|get|ls|inspect|delete``: shared string values (``fleetflow.variables``)."""

from __future__ import annotations

import typer

from ._output import console, fmt_time, kv_grid, open_client, plain, print_json, success, table

app = typer.Typer(help="Create, read, list and delete variables.", no_args_is_help=True)


@app.command("set")
def set_(
    name: str = typer.Argument(..., help="Lowercase letters, numbers and underscores."),
    value: str = typer.Argument(..., help="The value (a string)."),
    tag: list[str] = typer.Option([], "-t", "--tag", help="Tag (repeatable)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing variable."),
) -> None:
    """Create a variable (or replace one with --overwrite)."""
    from ..variables import check_variable

    text = check_variable(name, value)
    open_client().set_variable(name, text, tags=list(tag), overwrite=overwrite)
    success(f"Set variable {name!r}.")


@app.command("get")
def get(name: str = typer.Argument(...)) -> None:
    """Print a variable's value."""
    print(_read(name).value)


@app.command("inspect")
def inspect(name: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Show a variable with its tags and times."""
    var = _read(name)
    if as_json:
        return print_json(var.model_dump(mode="json"))
    console().print(kv_grid([("name", var.name), ("value", plain(var.value)), ("tags", ", ".join(var.tags) or "-"),
                             ("created", fmt_time(var.created)), ("updated", fmt_time(var.updated))]))


@app.command("ls")
def ls(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List variables."""
    variables = open_client().read_variables()
    if as_json:
        return print_json([v.model_dump(mode="json") for v in variables])
    tbl = table("name", "value", "tags", "updated")
    for v in variables:
        tbl.add_row(plain(v.name), plain(v.value if len(v.value) <= 60 else v.value[:57] + "..."),
                    plain(", ".join(v.tags)), fmt_time(v.updated))
    console().print(tbl)


@app.command("delete")
def delete(name: str = typer.Argument(...)) -> None:
    """Delete a variable."""
    open_client().delete_variable(name)
    success(f"Deleted variable {name!r}.")


def _read(name: str):
    from ..exceptions import ObjectNotFound

    var = open_client().read_variable(name)
    if var is None:
        raise ObjectNotFound(f"no variable named {name!r}; create it with `fleetflow variable set {name} VALUE`",
                             kind="variable", name=name)
    return var
