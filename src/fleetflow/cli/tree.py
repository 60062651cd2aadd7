"""A flow run and all its descendants, as rows (for JSON and scripts) or as a rich Tree.

The point of fleetflow is that each sub-flow runs on its own infrastructure, so every node shows
what it ran on (kind, cpu/memory) and its launch handle next to its state and duration. The
flagship example prints this tree at the end of a pipeline run.

    from fleetflow.cli.tree import render_run_tree
    rich.print(render_run_tree(client, parent_run.id))
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from rich.text import Text
from rich.tree import Tree

from ._output import duration_seconds, fmt_infra, fmt_seconds, short_handle, state_name, state_text

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

_MAX_CHILDREN = 10_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)  # sort key for runs with no times yet


def run_tree_rows(client: OrchestratorAPI, flow_run_id: str) -> list[dict[str, Any]]:
    """The run and its descendants, depth first (children oldest first), one dict per run.

    Each row: id, name, flow_name, state, state_name, message, depth, parent_flow_run_id,
    start_time, end_time, duration_seconds, infrastructure_kind, cpu, memory,
    infrastructure_pid, handle (short form), worker_name, work_pool_name, and from the usage
    record: usage, usage_line, peak_memory_mib, cost, cost_text.
    """
    from .usage_view import attach_usage

    rows: list[dict[str, Any]] = []
    runs: dict[str, Any] = {}
    _walk(client, client.read_flow_run(flow_run_id), 0, rows, runs)
    attach_usage(client, rows, list(runs.values()))  # usage_line, peak_memory_mib, cost, cost_text
    return rows


def _walk(client: OrchestratorAPI, run: Any, depth: int, rows: list[dict[str, Any]], runs: dict[str, Any]) -> None:
    """Depth-first; the runs seen (by id) guard against a corrupt parent link making a cycle."""
    if run.id in runs:
        return
    runs[run.id] = run
    rows.append(_row(run, depth))
    for child in _children(client, run.id):
        _walk(client, child, depth + 1, rows, runs)


def _children(client: OrchestratorAPI, flow_run_id: str) -> list[Any]:
    """Sub-runs in the order they started (the store returns newest first)."""
    children = client.read_flow_runs(parent_flow_run_id=flow_run_id, limit=_MAX_CHILDREN)
    return sorted(children, key=lambda r: (r.start_time or r.created or r.expected_start_time or _EPOCH, r.id))


def _row(run: Any, depth: int) -> dict[str, Any]:
    infra = run.infrastructure or {}
    return {
        "id": run.id,
        "name": run.name,
        "flow_name": run.flow_name,
        "state": state_name(run.state),
        "state_name": run.state.name if run.state else None,
        "message": run.state.message if run.state else None,
        "depth": depth,
        "parent_flow_run_id": run.parent_flow_run_id,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "duration_seconds": duration_seconds(run.start_time, run.end_time),
        "infrastructure_kind": infra.get("kind"),
        "cpu": infra.get("cpu"),
        "memory": infra.get("memory"),
        "infrastructure_pid": run.infrastructure_pid,
        "handle": short_handle(run.infrastructure_pid) if run.infrastructure_pid else None,
        "worker_name": run.worker_name,
        "work_pool_name": run.work_pool_name,
    }


def render_run_tree(client: OrchestratorAPI, flow_run_id: str) -> Tree:
    """A rich Tree of the run and all its descendants (see :func:`run_tree_rows`)."""
    return rows_to_tree(run_tree_rows(client, flow_run_id))


def rows_to_tree(rows: list[dict[str, Any]]) -> Tree:
    """Build the Tree from rows already read (lets a caller read once, print and save JSON)."""
    if not rows:
        return Tree(Text("(no runs)", style="dim"))
    root = Tree(node_label(rows[0]))
    stack: list[tuple[int, Tree]] = [(rows[0]["depth"], root)]
    for row in rows[1:]:
        while len(stack) > 1 and stack[-1][0] >= row["depth"]:
            stack.pop()
        stack.append((row["depth"], stack[-1][1].add(node_label(row))))
    return root


def node_label(row: dict[str, Any]) -> Text:
    """'name (flow)  COMPLETED  12.3s  ecs cpu 1024 / mem 2048  task 0f1e2d3c  [id 1a2b3c4d]'."""
    label = Text(row["name"], style="bold")
    label.append(f" ({row['flow_name']})", style="cyan")
    label.append("  ")
    label.append_text(state_text(_StateView(row["state"], row.get("state_name"))))
    label.append(f"  {fmt_seconds(row['duration_seconds'])}")
    infra = {"kind": row.get("infrastructure_kind"), "cpu": row.get("cpu"), "memory": row.get("memory")}
    if row.get("infrastructure_kind"):
        label.append(f"  {fmt_infra(infra)}", style="magenta")
    if row.get("usage_line"):
        label.append(f"  {row['usage_line']}", style="green")
    if row.get("cost_text"):
        label.append(f"  {row['cost_text']}", style="yellow")
    if row.get("handle"):
        label.append(f"  {row['handle']}", style="dim")
    label.append(f"  [{row['id'][:8]}]", style="dim")
    if row.get("message") and row["state"] in ("FAILED", "CRASHED", "CANCELLED"):
        label.append(f"  {row['message']}", style="italic red")
    return label


class _StateView:
    """Just enough of a State for :func:`state_text` when all we kept is its type and name."""

    def __init__(self, type_: str, name: str | None) -> None:
        self.type = type_
        self.name = name or ""

