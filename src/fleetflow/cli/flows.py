"""``fleetflow flow ls``: the flows the store has seen (from their runs and deployments)."""

from __future__ import annotations

from typing import Any

import typer

from ._output import console, fmt_time, open_client, plain, print_json, table

app = typer.Typer(help="List flows.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """A group even with one command, so `fleetflow flow <command>` reads like Prefect's."""


def flow_summaries(runs: list[Any], deployments: list[Any]) -> list[dict[str, Any]]:
    """One row per flow name: its deployments and its newest run (pure, for tests)."""
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:  # newest first
        row = rows.setdefault(run.flow_name, {"name": run.flow_name, "deployments": [], "last_run": None, "last_state": None})
        if row["last_run"] is None:
            row["last_run"], row["last_state"] = run.created, run.state.name if run.state else None
    for d in deployments:
        rows.setdefault(d.flow_name, {"name": d.flow_name, "deployments": [], "last_run": None, "last_state": None})
        rows[d.flow_name]["deployments"].append(d.name)
    return sorted(rows.values(), key=lambda r: r["name"])


@app.command("ls")
def ls(limit: int = typer.Option(1000, "--limit", min=1, help="Runs scanned for flow names (newest first)."),
       as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List flows with their deployments and latest run."""
    client = open_client()
    rows = flow_summaries(client.read_flow_runs(limit=limit), client.read_deployments())
    if as_json:
        return print_json(rows)
    tbl = table("name", "deployments", "last run", "last state")
    for r in rows:
        tbl.add_row(plain(r["name"]), plain(", ".join(sorted(r["deployments"])) or "-"), fmt_time(r["last_run"]),
                    plain(r["last_state"] or "-"))
    console().print(tbl)
