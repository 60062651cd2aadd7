"""``fleetflow deployment build|apply|ls|inspect|delete|run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ._output import console, fmt_time, kv_grid, open_client, plain, print_json, success, table, warn

app = typer.Typer(help="Build, apply, list, inspect, delete and run deployments.", no_args_is_help=True)


def parse_assignments(items: list[str], what: str) -> dict[str, Any]:
    """``k=v`` pairs; values parsed as JSON when they are valid JSON (so cpu=512 is a number)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            from ..exceptions import ConfigurationError

            raise ConfigurationError(f"{what} {item!r} must look like key=value (e.g. cpu=512)")
        key, raw = item.split("=", 1)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _load_flow(target: str) -> tuple[Any, Path]:
    from ..entrypoints import load_flow_from_entrypoint

    file_part = target.rsplit(":", 1)[0]
    root = Path.cwd()
    rel = Path(file_part).resolve().relative_to(root) if Path(file_part).is_absolute() else Path(file_part)
    return load_flow_from_entrypoint(f"{rel.as_posix()}:{target.rsplit(':', 1)[1]}", root), root


def parse_params(params_json: str | None, assignments: list[str]) -> dict[str, Any]:
    """``--params '{"x": 1}'`` (Prefect's form) merged with ``--param k=v`` pairs."""
    merged: dict[str, Any] = {}
    if params_json:
        from ..exceptions import ConfigurationError

        try:
            merged = json.loads(params_json)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"--params is not valid JSON ({exc}); e.g. --params '{{\"n\": 3}}'") from None
        if not isinstance(merged, dict):
            raise ConfigurationError("--params must be a JSON object, e.g. --params '{\"n\": 3}'")
    return {**merged, **parse_assignments(assignments, "--param")}


@app.command()
def build(
    target: str = typer.Argument(..., help="path/to/file.py:flow_function"),
    name: str = typer.Option(..., "-n", "--name", help="Deployment name."),
    storage_block: Optional[str] = typer.Option(None, "-sb", "--storage-block", help="storage-type/name"),
    infra_block: Optional[str] = typer.Option(None, "-ib", "--infra-block", help="infrastructure-type/name"),
    infra: Optional[str] = typer.Option(None, "-i", "--infra", help="Infrastructure type for an unsaved block, e.g. process or ecs-task."),
    pool: Optional[str] = typer.Option(None, "-p", "--pool", help="Work pool name. [default: default]"),
    work_queue: Optional[str] = typer.Option(None, "-q", "--work-queue", help="Work queue (Prefect 2); names the pool when -p is not given."),
    override: list[str] = typer.Option([], "--override", help="Infra override key=value (repeatable)."),
    param: list[str] = typer.Option([], "--param", help="Default parameter key=value (repeatable)."),
    params: Optional[str] = typer.Option(None, "--params", help="Default parameters as a JSON object."),
    tag: list[str] = typer.Option([], "-t", "--tag", help="Tag for the deployment's runs (repeatable)."),
    version: Optional[str] = typer.Option(None, "-v", "--version", help="Version label of the deployment."),
    description: Optional[str] = typer.Option(None, "--description", help="Description (default: the flow's docstring)."),
    path: Optional[Path] = typer.Option(None, "--path", help="Project root to bundle (default: the current directory)."),
    skip_upload: bool = typer.Option(False, "--skip-upload", help="Do not upload code: runs import it from --path."),
    cron: Optional[str] = typer.Option(None, "--cron", help="Cron schedule, e.g. '0 6 * * *'."),
    interval: Optional[float] = typer.Option(None, "--interval", help="Interval schedule in seconds."),
    rrule: Optional[str] = typer.Option(None, "--rrule", help="RFC 5545 recurrence rule, e.g. 'FREQ=DAILY;BYHOUR=6'."),
    timezone: Optional[str] = typer.Option(None, "--timezone", help="Time zone of --cron/--rrule. [default: UTC]"),
    output: Path = typer.Option(Path("deployment.yaml"), "-o", "--output", help="Where to write the YAML."),
    apply: bool = typer.Option(False, "-a", "--apply", help="Also apply it."),
) -> None:
    """Describe a deployment in a YAML file (and optionally apply it)."""
    from ..blocks import Block
    from ..deployments import Deployment
    from ..server.schemas.schedules import schedule_from_options

    flow, root = _load_flow(target)
    schedule = schedule_from_options(interval=interval, cron=cron, rrule=rrule, timezone=timezone)
    deployment = Deployment.build_from_flow(
        flow, name, path=str((path or root).resolve()), work_pool_name=pool or work_queue or "default",
        work_queue_name=work_queue,
        infra_overrides=parse_assignments(override, "--override"), parameters=parse_params(params, param),
        schedule=schedule, storage=Block.load(storage_block) if storage_block else None,
        infrastructure=_infrastructure(infra_block, infra), tags=list(tag), version=version, description=description,
        skip_upload=skip_upload,
    )
    deployment.validate_all(open_client())
    deployment.to_yaml(output)
    success(f"wrote {output}")
    if apply:
        _apply(deployment)


def _infrastructure(infra_block: Optional[str], infra: Optional[str]) -> Any:
    """-ib TYPE/NAME (a saved block) or -i TYPE (a default block of that type)."""
    from ..blocks import Block
    from ..blocks.base import get_block_class

    if infra_block and infra:
        from ..exceptions import ConfigurationError

        raise ConfigurationError("give -ib/--infra-block or -i/--infra, not both")
    if infra_block:
        return Block.load(infra_block)
    return get_block_class(infra)() if infra else None


def _apply(deployment: Any) -> None:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    if deployment.skip_upload:
        deployment_id = deployment.apply(upload=False)
    else:
        with Progress(TextColumn("uploading code bundle"), BarColumn(), DownloadColumn(), console=console()) as bar:
            task = bar.add_task("upload", total=None)
            deployment_id = deployment.apply(progress=lambda done, total: bar.update(task, completed=done, total=total))
    success(f"applied deployment '{deployment.flow_name}/{deployment.name}' ({deployment_id})")
    console().print(f"run it with: fleetflow deployment run '{deployment.flow_name}/{deployment.name}'")


@app.command("apply")
def apply_cmd(path: Path = typer.Argument(..., help="deployment.yaml written by `deployment build`.")) -> None:
    """Validate, upload the code bundle (skipped when unchanged) and register the deployment."""
    from ..deployments import Deployment

    _apply(Deployment.load_yaml(path))


@app.command("ls")
def ls(as_json: bool = typer.Option(False, "--json")) -> None:
    """List deployments."""
    deployments = open_client().read_deployments()
    if as_json:
        return print_json([d.model_dump() for d in deployments])
    tbl = table("name", "pool", "infrastructure", "overrides", "schedule", "bundle", "updated")
    for d in deployments:
        tbl.add_row(plain(d.full_name), plain(d.work_pool_name), plain(d.infrastructure_block or d.infrastructure.get("type") or "(pool default)"),
                    plain(json.dumps(d.infra_overrides)), plain(json.dumps(d.schedule) if d.schedule else "-"),
                    (d.bundle_digest or "local path")[:12], fmt_time(d.updated))
    console().print(tbl)


@app.command()
def inspect(name: str = typer.Argument(..., help="flow-name/deployment-name"), as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one deployment."""
    d = open_client().read_deployment_by_name(name)
    if as_json:
        return print_json(d.model_dump())
    console().print(kv_grid([
        ("name", d.full_name), ("id", d.id), ("entrypoint", d.entrypoint), ("work pool", d.work_pool_name),
        ("storage", d.storage_block or f"local path {d.path}"), ("bundle", d.bundle_digest or "-"),
        ("infrastructure", d.infrastructure_block or d.infrastructure.get("type") or "(pool default)"),
        ("infra_overrides", json.dumps(d.infra_overrides)), ("parameters", json.dumps(d.parameters)),
        ("schedule", json.dumps(d.schedule) if d.schedule else "-"), ("tags", ", ".join(d.tags) or "-"),
        ("description", d.description or "-"),
    ]))


@app.command()
def delete(name: str = typer.Argument(...), yes: bool = typer.Option(False, "--yes", "-y")) -> None:
    """Delete a deployment (its runs stay)."""
    client = open_client()
    d = client.read_deployment_by_name(name)
    if not yes:
        typer.confirm(f"delete deployment {d.full_name}?", abort=True)
    client.delete_deployment(d.id)
    success(f"deleted deployment {d.full_name}")


@app.command()
def run(
    name: str = typer.Argument(..., help="flow-name/deployment-name"),
    param: list[str] = typer.Option([], "--param", help="Parameter key=value (repeatable)."),
    params: Optional[str] = typer.Option(None, "--params", help="Parameters as a JSON object (Prefect's form)."),
    override: list[str] = typer.Option([], "--override", help="Infra override key=value for this run."),
    start_in: Optional[str] = typer.Option(None, "--start-in", help="Start later, e.g. '10m', '2 hours'."),
    start_at: Optional[str] = typer.Option(None, "--start-at", help="Start at this ISO time (local unless it has a zone)."),
    watch: bool = typer.Option(False, "--watch", help="Wait and stream logs until the run ends."),
    idempotency_key: Optional[str] = typer.Option(None, "--idempotency-key"),
) -> None:
    """Create a run of a deployment (and follow it with --watch)."""
    import warnings

    from ..run_deployments import run_deployment
    from ..states import utcnow
    from .timing import scheduled_time

    when = scheduled_time(start_in, start_at, utcnow())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flow_run = run_deployment(name, parameters=parse_params(params, param), timeout=0,
                                  infra_overrides=parse_assignments(override, "--override") or None,
                                  idempotency_key=idempotency_key, as_subflow=False, scheduled_time=when)
    for w in caught:
        warn(str(w.message))
    success(f"Created flow run {flow_run.name!r} ({flow_run.id})" + (f", scheduled for {fmt_time(when)}" if when else ""))
    if watch:
        from .flow_runs import follow_run

        follow_run(open_client(), flow_run.id)


def _set_schedule_active(name: str, active: bool) -> None:
    client = open_client()
    d = client.read_deployment_by_name(name)
    if not d.schedule:
        from ..exceptions import ConfigurationError

        raise ConfigurationError(f"deployment {d.full_name} has no schedule; build it with --cron, --interval or --rrule")
    client.upsert_deployment(d.model_copy(update={"schedule": {**d.schedule, "active": active}}))
    success(f"{'resumed' if active else 'paused'} the schedule of {d.full_name}")


@app.command("pause-schedule")
def pause_schedule(name: str = typer.Argument(..., help="flow-name/deployment-name")) -> None:
    """Stop creating scheduled runs for a deployment (runs already created stay)."""
    _set_schedule_active(name, False)


@app.command("resume-schedule")
def resume_schedule(name: str = typer.Argument(..., help="flow-name/deployment-name")) -> None:
    """Start creating scheduled runs for a deployment again."""
    _set_schedule_active(name, True)


from .recommend import recommend as _recommend  # noqa: E402 - its own module; registered here

app.command("recommend")(_recommend)
