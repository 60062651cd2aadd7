"""``fleetflow flow-run``: list, inspect, follow logs of, and cancel flow runs.

Every command takes a run id or any unique prefix of one (the 8 characters ``ls`` shows), so
ids can be copied from a table without reaching for ``--json``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator, Optional

import typer
from rich.console import Group
from rich.text import Text

from ..exceptions import FleetflowError, InvalidStateTransition, ObjectNotFound, RunFailed
from ..states import StateType
from .usage_view import tree_total_text, usage_data, usage_panel
from ._output import (
    console,
    dumps,
    fmt_ago,
    fmt_duration,
    fmt_infra,
    fmt_time,
    kv_grid,
    level_name,
    level_text,
    note,
    now,
    open_client,
    panel,
    print_json,
    short_handle,
    short_id,
    short_task_run_id,
    state_text,
    success,
    table,
    warn,
)

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

app = typer.Typer(name="flow-run", help="List, inspect, follow and cancel flow runs.", no_args_is_help=True)

PREFIX_SCAN_LIMIT = 10_000  # prefixes are matched against this many most recent runs
STALE_POOL_SECONDS = 30.0  # a pool not polled for this long has no live worker
LOG_POLL_SECONDS = 0.2
_WAITING = (StateType.SCHEDULED, StateType.PENDING)


class AmbiguousFlowRunId(FleetflowError):
    """An id prefix matches more than one run; ``candidates`` lists their ids."""

    def __init__(self, message: str, *, candidates: list[str]):
        super().__init__(message)
        self.candidates = candidates


# ---- id resolution -----------------------------------------------------------------------------
def resolve_flow_run(client: OrchestratorAPI, ref: str) -> Any:
    """The run whose id is ``ref`` or starts with ``ref``; clear errors for none or several."""
    ref = ref.strip().lower()
    if not ref:
        raise ObjectNotFound("empty flow run id; list runs with `fleetflow flow-run ls`", kind="flow run")
    if len(ref) == 36:  # a whole uuid: one indexed lookup
        try:
            return client.read_flow_run(ref)
        except ObjectNotFound:
            pass
    matches = [r for r in client.read_flow_runs(limit=PREFIX_SCAN_LIMIT) if r.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ObjectNotFound(
            f"no flow run with id or id prefix {ref!r}; list runs with `fleetflow flow-run ls`",
            kind="flow run",
            name=ref,
        )
    shown = ", ".join(f"{r.id} ({r.name})" for r in matches[:5]) + (" ..." if len(matches) > 5 else "")
    raise AmbiguousFlowRunId(
        f"id prefix {ref!r} matches {len(matches)} flow runs: {shown}; give more characters",
        candidates=[r.id for r in matches],
    )


# ---- ls ----------------------------------------------------------------------------------------
@app.command("ls")
def ls(
    flow: Optional[str] = typer.Option(None, "--flow", help="Only runs of this flow."),
    state: Optional[list[StateType]] = typer.Option(
        None, "--state", case_sensitive=False, help="Only runs in this state (repeatable)."
    ),
    limit: int = typer.Option(20, "--limit", min=1, help="At most this many runs, newest first."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON (full ids) instead of a table."),
) -> None:
    """List flow runs, newest first."""
    runs = open_client().read_flow_runs(flow_name=flow, state_types=state or None, limit=limit)
    if json_output:
        print_json([r.model_dump(mode="json") for r in runs])
        return
    if not runs:
        note("No flow runs found.")
        return
    tbl = table("ID", "NAME", "FLOW", "STATE", "STARTED", "DURATION", "INFRA", "PARENT")
    for run in runs:
        tbl.add_row(
            short_id(run.id),
            run.name,
            run.flow_name,
            state_text(run.state),
            fmt_time(run.start_time, short=True),
            fmt_duration(run.start_time, run.end_time),
            fmt_infra(run.infrastructure) if run.infrastructure else "-",
            short_id(run.parent_flow_run_id),
        )
    console().print(tbl)


# ---- inspect -----------------------------------------------------------------------------------
@app.command("inspect")
def inspect(
    flow_run_id: str = typer.Argument(..., help="Flow run id or a unique prefix of it."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of panels."),
    tree: bool = typer.Option(False, "--tree", help="Show the run and all its sub-runs as a tree."),
) -> None:
    """Show a run: state history, parameters, task runs, infrastructure, worker."""
    client = open_client()
    run = resolve_flow_run(client, flow_run_id)
    warn_if_no_worker(client, run)
    if tree:
        _print_tree(client, run, json_output)
    elif json_output:
        print_json(_inspect_data(client, run))
    else:
        console().print(_inspect_renderable(client, run))


def _print_tree(client: OrchestratorAPI, run: Any, json_output: bool) -> None:
    from .tree import rows_to_tree, run_tree_rows

    rows = run_tree_rows(client, run.id)
    if json_output:
        print_json(rows)
    else:
        console().print(rows_to_tree(rows))
        console().print(tree_total_text(rows))


def _inspect_data(client: OrchestratorAPI, run: Any) -> dict[str, Any]:
    return {
        "flow_run": run.model_dump(mode="json"),
        "states": [s.model_dump(mode="json") for s in client.read_flow_run_states(run.id)],
        "task_runs": [t.model_dump(mode="json") for t in client.read_task_runs(run.id)],
        "children": [c.id for c in client.read_flow_runs(parent_flow_run_id=run.id, limit=PREFIX_SCAN_LIMIT)],
        "artifacts": [a.model_dump(mode="json") for a in _artifacts(client, run.id)],
        "usage": usage_data(client, run),
    }


def _artifacts(client: OrchestratorAPI, flow_run_id: str) -> list[Any]:
    reader = getattr(client, "read_artifacts", None)  # a store without artifacts (older server)
    return reader(flow_run_id=flow_run_id) if reader else []


def _inspect_renderable(client: OrchestratorAPI, run: Any) -> Group:
    parts: list[Any] = [panel(_details(client, run), f"flow run {run.name}"), usage_panel(client, run)]
    parts.append(_history_table(client.read_flow_run_states(run.id)))
    if run.parameters:
        parts.append(panel(Text(dumps(run.parameters, indent=2)), "parameters"))
    task_runs = client.read_task_runs(run.id)
    if task_runs:
        parts.append(_task_runs_table(task_runs))
    artifacts = _artifacts(client, run.id)
    if artifacts:
        from .artifacts import artifacts_table

        parts.append(artifacts_table(artifacts))
    return Group(*parts)


def _details(client: OrchestratorAPI, run: Any) -> Any:
    rows: list[tuple[str, Any]] = [
        ("id", run.id),
        ("flow", run.flow_name),
        ("state", state_text(run.state)),
    ]
    if run.state and run.state.message:
        rows.append(("message", run.state.message))
    rows.append(("created", fmt_time(run.created)))
    if run.expected_start_time:
        rows.append(("scheduled for", f"{fmt_time(run.expected_start_time)} ({fmt_ago(run.expected_start_time)})"))
    rows += [
        ("started", fmt_time(run.start_time)),
        ("ended", fmt_time(run.end_time)),
        ("duration", fmt_duration(run.start_time, run.end_time)),
        ("run count", run.run_count),
    ]
    rows += _lineage_rows(client, run)
    rows += _infra_rows(run)
    if run.tags:
        rows.append(("tags", ", ".join(run.tags)))
    return kv_grid(rows)


def _lineage_rows(client: OrchestratorAPI, run: Any) -> list[tuple[str, Any]]:
    """Parent, children and deployment: where this run sits in a pipeline."""
    rows: list[tuple[str, Any]] = []
    if run.parent_flow_run_id:
        rows.append(("parent", f"{run.parent_flow_run_id} ({_run_name(client, run.parent_flow_run_id)})"))
    children = client.read_flow_runs(parent_flow_run_id=run.id, limit=PREFIX_SCAN_LIMIT)
    if children:
        rows.append(("sub-runs", f"{len(children)} (see --tree)"))
    if run.deployment_id:
        rows.append(("deployment", _deployment_name(client, run.deployment_id)))
    return rows


def _infra_rows(run: Any) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    if run.work_pool_name:
        rows.append(("work pool", run.work_pool_name))
    if run.worker_name:
        rows.append(("worker", run.worker_name))
    if run.infrastructure:
        rows.append(("infrastructure", fmt_infra(run.infrastructure)))
        extra = {k: v for k, v in run.infrastructure.items() if k not in ("kind", "cpu", "memory")}
        if extra:
            rows.append(("", dumps(extra)))
    if run.infrastructure_pid:
        rows.append(("handle", f"{run.infrastructure_pid} ({short_handle(run.infrastructure_pid)})"))
    if run.infra_overrides:
        rows.append(("overrides", dumps(run.infra_overrides)))
    return rows


def _run_name(client: OrchestratorAPI, flow_run_id: str) -> str:
    try:
        return client.read_flow_run(flow_run_id).name
    except ObjectNotFound:
        return "deleted"


def _deployment_name(client: OrchestratorAPI, deployment_id: str) -> str:
    try:
        return client.read_deployment(deployment_id).full_name
    except ObjectNotFound:
        return f"{deployment_id} (deleted)"


def _history_table(states: list[Any]) -> Any:
    tbl = table("#", "TYPE", "NAME", "MESSAGE", "TIMESTAMP", title="state history")
    for number, state in enumerate(states, 1):
        tbl.add_row(str(number), state_text(state.type), state.name, state.message or "", fmt_time(state.timestamp, millis=True))
    return tbl


def _task_runs_table(task_runs: list[Any]) -> Any:
    tbl = table("ID", "TASK RUN", "STATE", "STARTED", "DURATION", "TRIES", title="task runs")
    for tr in task_runs:
        tbl.add_row(
            short_task_run_id(tr.id), tr.name, state_text(tr.state), fmt_time(tr.start_time),
            fmt_duration(tr.start_time, tr.end_time), str(tr.run_count),
        )  # fmt: skip
    return tbl


def warn_if_no_worker(client: OrchestratorAPI, run: Any) -> None:
    """A waiting run in a pool nobody polls will wait forever: say so, and how to fix it."""
    if run.state_type not in _WAITING or not run.work_pool_name:
        return
    pool_name = run.work_pool_name
    try:
        pool = client.read_work_pool(pool_name)
    except ObjectNotFound:
        warn(
            f"work pool {pool_name!r} does not exist, so no worker will pick this run up; create it with "
            f"`fleetflow work-pool create {pool_name}` and start a worker with `fleetflow worker start --pool {pool_name}`"
        )
        return
    if pool.last_polled is not None and (now() - pool.last_polled).total_seconds() <= STALE_POOL_SECONDS:
        return
    since = f"since {fmt_time(pool.last_polled)} ({fmt_ago(pool.last_polled)})" if pool.last_polled else "yet"
    warn(f"no worker has polled pool {pool_name!r} {since}; start one with `fleetflow worker start --pool {pool_name}`")


# ---- logs --------------------------------------------------------------------------------------
@app.command("logs")
def logs(
    flow_run_id: str = typer.Argument(..., help="Flow run id or a unique prefix of it."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines until the run is final."),
    tail: Optional[int] = typer.Option(None, "--tail", "-n", min=0, help="Only the last N lines (then follow)."),
    json_output: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Print a run's logs: timestamp, level, task run (or 'flow') and message."""
    client = open_client()
    run = resolve_flow_run(client, flow_run_id)
    printer = _LogPrinter(client, run.id, json_output)
    records = list(_read_all_logs(client, run.id, after_id=0))
    for record in records if tail is None else records[max(0, len(records) - tail) :]:
        printer.print(record)
    if follow:
        _follow(client, run.id, records[-1].id if records else 0, printer)


def follow_run(client: OrchestratorAPI, flow_run_id: str, *, json_output: bool = False, raise_on_failure: bool = True) -> Any:
    """Stream a run's logs until it is final, then say how it ended; returns the final run.

    For ``deployment run --watch``: a run that did not complete raises
    :class:`~fleetflow.exceptions.RunFailed` (one ``Error:`` line, exit 1) so scripts can rely
    on the exit code; ``raise_on_failure=False`` only warns.
    """
    run = client.read_flow_run(flow_run_id)
    warn_if_no_worker(client, run)
    _follow(client, run.id, 0, _LogPrinter(client, run.id, json_output))
    run = client.read_flow_run(run.id)
    _report_end(run, quiet=json_output, raise_on_failure=raise_on_failure)
    return run


def _report_end(run: Any, *, quiet: bool, raise_on_failure: bool) -> None:
    ended = f"flow run {run.name!r} ({run.id}) ended {run.state.type.value}"
    if run.state.is_completed():
        if not quiet:
            success(f"{ended} after {fmt_duration(run.start_time, run.end_time)}")
        return
    message = f"{ended}: {run.state.message}" if run.state.message else ended
    if raise_on_failure:
        raise RunFailed(message, run_id=run.id, state=run.state)
    warn(message)


def _read_all_logs(client: OrchestratorAPI, flow_run_id: str, *, after_id: int, page: int = 1000) -> Iterator[Any]:
    """Every log record after ``after_id``, paging so a huge run never loads in one query."""
    while True:
        batch = client.read_logs(flow_run_id=flow_run_id, after_id=after_id, limit=page)
        yield from batch
        if len(batch) < page:
            return
        after_id = batch[-1].id


def _follow(client: OrchestratorAPI, flow_run_id: str, last_id: int, printer: "_LogPrinter") -> None:
    """Print new lines until the run is final; Ctrl-C stops following (exit 130), not the run."""
    try:
        _poll_logs(client, flow_run_id, last_id, printer)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _poll_logs(client: OrchestratorAPI, flow_run_id: str, last_id: int, printer: "_LogPrinter") -> None:
    """Poll every 0.2 s until the run is final, then drain once more (logs flush after states)."""
    final_seen = False
    while True:
        batch = list(_read_all_logs(client, flow_run_id, after_id=last_id))
        for record in batch:
            printer.print(record)
        if batch:
            last_id = batch[-1].id
        if final_seen and not batch:
            return
        if not final_seen:
            state = client.read_flow_run(flow_run_id).state
            final_seen = state is not None and state.is_final
        time.sleep(LOG_POLL_SECONDS)


class _LogPrinter:
    """Formats records; remembers task run names so each line says which task logged it."""

    def __init__(self, client: OrchestratorAPI, flow_run_id: str, json_output: bool) -> None:
        self.client = client
        self.flow_run_id = flow_run_id
        self.json_output = json_output
        self.task_names: dict[str, str] = {}
        self.console = console()

    def source(self, task_run_id: str | None) -> str:
        if not task_run_id:
            return "flow"
        if task_run_id not in self.task_names:  # a task started since we last looked
            self.task_names.update({t.id: t.name for t in self.client.read_task_runs(self.flow_run_id)})
        return self.task_names.get(task_run_id, short_task_run_id(task_run_id))

    def print(self, record: Any) -> None:
        source = self.source(record.task_run_id)
        if self.json_output:
            data = record.model_dump(mode="json")
            data.update(level_name=level_name(record.level), source=source)
            typer.echo(dumps(data))
            return
        line = Text(fmt_time(record.timestamp, millis=True) + " ", style="dim")
        line.append_text(level_text(record.level))
        line.append(f" {source} ", style="bold")
        line.append("| ", style="dim")
        line.append(record.message)
        self.console.print(line, soft_wrap=True)


# ---- cancel ------------------------------------------------------------------------------------
@app.command("cancel")
def cancel(flow_run_id: str = typer.Argument(..., help="Flow run id or a unique prefix of it.")) -> None:
    """Cancel a run and every unfinished sub-run (their infrastructure is stopped too)."""
    from ..cancellation import cancel_flow_run

    client = open_client()
    run = resolve_flow_run(client, flow_run_id)
    if run.state is not None and run.state.is_final:
        raise InvalidStateTransition(
            f"flow run {run.name!r} ({run.id}) is already {run.state.type.value}; there is nothing to cancel",
            current=run.state.type.value,
            proposed=StateType.CANCELLED.value,
        )
    touched = cancel_flow_run(client, run.id)
    if not touched:
        note(f"Flow run {run.name!r} is already being cancelled; nothing more to do.")
        return
    for run_id in touched:
        after = client.read_flow_run(run_id)
        line = Text(f"{after.name} ({after.id}) -> ")
        line.append_text(state_text(after.state))
        console().print(line, soft_wrap=True)
    success(f"Cancelled {len(touched)} flow run(s).")


@app.command("resume")
def resume(flow_run_id: str = typer.Argument(..., help="Flow run id or a unique prefix of it.")) -> None:
    """Resume a paused run (``pause_flow_run``): its waiting process continues."""
    from ..engine.pause import resume_flow_run

    client = open_client()
    run = resolve_flow_run(client, flow_run_id)
    resume_flow_run(run.id, client=client)
    success(f"Resumed flow run {run.name!r} ({run.id}).")


# ---- reconcile ---------------------------------------------------------------------------------
@app.command("reconcile")
def reconcile() -> None:
    """Sweep every run whose lease expired: re-attach, reschedule, cancel or mark it CRASHED.

    Workers, the scheduler and the server do this continuously; this is the one-shot version
    for a store nobody is watching (e.g. flows run from scripts).
    """
    import asyncio

    from ..worker.sweep import reconcile_all

    outcomes = asyncio.run(reconcile_all(open_client()))
    if not outcomes:
        note("No run has an expired lease; nothing to reconcile.")
        return
    for outcome in outcomes:
        console().print(Text(f"{outcome.run_id}: {outcome.decision.action.value} -- {outcome.decision.message}"),
                        soft_wrap=True)
    success(f"Reconciled {len(outcomes)} flow run(s).")


# ---- retry -------------------------------------------------------------------------------------
@app.command("retry")
def retry(flow_run_id: str = typer.Argument(..., help="Flow run id or a unique prefix of it.")) -> None:
    """Relaunch a finished deployment run as a new attempt of the same flow run."""
    from ..states import utcnow

    client = open_client()
    run = resolve_flow_run(client, flow_run_id)
    if not run.deployment_id:
        raise InvalidStateTransition(
            f"flow run {run.name!r} ({run.id}) did not come from a deployment, so no worker can relaunch it; "
            "run its script again instead",
            current=run.state.type.value if run.state else "", proposed=StateType.SCHEDULED.value,
        )
    message = f"retried by user (was {run.state.type.value if run.state else 'new'})"
    again = client.relaunch_flow_run(run.id, message, not_before=utcnow(), from_final=True)
    if again is None:
        raise InvalidStateTransition(
            f"flow run {run.name!r} ({run.id}) is {run.state.type.value if run.state else 'new'}, not finished; "
            "only a COMPLETED, FAILED, CRASHED or CANCELLED run can be retried (cancel it first)",
            current=run.state.type.value if run.state else "", proposed=StateType.SCHEDULED.value,
        )
    success(f"Flow run {again.name!r} ({again.id}) is SCHEDULED again; a worker of pool "
            f"{again.work_pool_name!r} will launch it as a new attempt.")
