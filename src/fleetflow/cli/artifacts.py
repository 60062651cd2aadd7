"""``fleetflow artifact ls|inspect``: artifacts published by runs (``fleetflow.artifacts``)."""

from __future__ import annotations

from typing import Any, Optional

import typer

from ._output import console, dumps, fmt_time, open_client, plain, print_json, short_id, table

app = typer.Typer(help="List and inspect artifacts published by runs.", no_args_is_help=True)


def artifacts_table(artifacts: list[Any]) -> Any:
    from ..artifacts import render_artifact

    tbl = table("key", "type", "content", "description", "flow run", "created")
    for a in artifacts:
        tbl.add_row(plain(a.key or "-"), a.type, plain(render_artifact(a)), plain(a.description or ""),
                    short_id(a.flow_run_id), fmt_time(a.created))
    return tbl


@app.command("ls")
def ls(
    key: Optional[str] = typer.Option(None, "--key", help="Only artifacts with this key (its history)."),
    flow_run_id: Optional[str] = typer.Option(None, "--flow-run", help="Only artifacts of this flow run id."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List artifacts, newest first."""
    artifacts = open_client().read_artifacts(key=key, flow_run_id=flow_run_id, limit=limit)
    if as_json:
        return print_json([a.model_dump(mode="json") for a in artifacts])
    console().print(artifacts_table(artifacts))


@app.command("inspect")
def inspect(key: str = typer.Argument(..., help="Artifact key."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the latest artifact with this key, in full."""
    from ..exceptions import ObjectNotFound

    found = open_client().read_artifacts(key=key, limit=1)
    if not found:
        raise ObjectNotFound(f"no artifact with key {key!r}; `fleetflow artifact ls` lists them", kind="artifact", name=key)
    artifact = found[0]
    if as_json:
        return print_json(artifact.model_dump(mode="json"))
    body = artifact.data if artifact.type == "markdown" else dumps(artifact.data, indent=2)
    console().print(plain(f"{artifact.type} artifact {key!r} ({artifact.id}), flow run {artifact.flow_run_id or '-'}"))
    console().print(plain(body))
