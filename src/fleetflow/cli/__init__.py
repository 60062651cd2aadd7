"""The ``fleetflow`` command.

Sub-commands live in their own modules and are imported only when used, so ``fleetflow
flow-run ls`` never pays for importing the deployment or worker machinery. To add a command
group, write a module with a ``typer.Typer`` called ``app`` and add one line to
:data:`SUBCOMMANDS`.

Every command runs inside :func:`fleetflow.cli._output.error_boundary`: a ``FleetflowError``
becomes one red ``Error: ...`` line and exit code 1, never a traceback.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Optional

import typer
from typer.core import TyperGroup

# (command name, module holding a `typer.Typer` named `app`, one-line help for `fleetflow --help`).
# Imported lazily by `_LazyGroup`; the help text is here so `--help` need not import them.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("flow-run", "fleetflow.cli.flow_runs", "List, inspect, follow and cancel flow runs."),
    ("block", "fleetflow.cli.blocks", "List, inspect and delete saved blocks; describe block types."),
    ("work-pool", "fleetflow.cli.work_pools", "Create, list, inspect, pause, resume and delete work pools."),
    ("deployment", "fleetflow.cli.deployments", "Build, apply, list, inspect, delete and run deployments."),
    ("worker", "fleetflow.cli.workers", "Start a worker that launches a pool's runs."),
    ("scheduler", "fleetflow.cli.scheduler", "Create runs for deployments with schedules (safe to run twice)."),
    ("aws", "fleetflow.cli.aws", "AWS helpers: register blocks from Terraform outputs."),
    ("flow", "fleetflow.cli.flows", "List flows."),
    ("variable", "fleetflow.cli.variables", "Create, read, list and delete variables."),
    ("artifact", "fleetflow.cli.artifacts", "List and inspect artifacts published by runs."),
    ("concurrency-limit", "fleetflow.cli.concurrency", "Limit how many task runs with a tag run at once."),
    ("work-queue", "fleetflow.cli.work_queues", "Create, list, pause and resume work queues inside pools."),
    ("agent", "fleetflow.cli.agents", "Prefect 2's agent: starts a worker (the current form is `worker start`)."),
    ("server", "fleetflow.cli.server", "Start the fleetflow API server over the store."),
    ("api-key", "fleetflow.cli.api_keys", "Create, list and revoke the server's scoped API keys."),
    ("login", "fleetflow.cli.login", "Save a server URL and API key as this machine's profile."),
    ("logout", "fleetflow.cli.logout", "Remove the saved server profile."),
    ("cost", "fleetflow.cli.cost", "Cost estimates of launched runs, per deployment and per run."),
]


class _LazyGroup(TyperGroup):
    """A typer group that imports a sub-app on first use and guards every command's errors."""

    def list_commands(self, ctx: Any) -> list[str]:
        eager = super().list_commands(ctx)
        return eager + [name for name, _, _ in SUBCOMMANDS if name not in eager]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _lazy_modules():
            command = self._load(cmd_name)
        return command

    def _load(self, cmd_name: str) -> Any:
        try:
            module = importlib.import_module(_lazy_modules()[cmd_name])
        except ImportError as exc:  # e.g. an optional extra is not installed
            return _unavailable(cmd_name, exc)
        from .metavars import apply_metavars

        command = apply_metavars(typer.main.get_command(module.app))
        command.name = cmd_name
        self.add_command(command, cmd_name)
        return command

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # Typer only suggests among commands already imported; suggest among all of them.
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx))
            ctx.fail(f"No such command {name!r}." + (f" Did you mean {close[0]!r}?" if close else ""))
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        from ._output import error_boundary
        from .prefect_hints import add_prefect_hint

        with error_boundary(), add_prefect_hint():
            return super().invoke(ctx)


def _unavailable(cmd_name: str, exc: ImportError) -> Any:
    """A stand-in that keeps `fleetflow --help` working and fails in one line when used."""
    help_text = next(h for n, _, h in SUBCOMMANDS if n == cmd_name)
    stub = typer.Typer(name=cmd_name, add_completion=False)

    swallow_everything = {"ignore_unknown_options": True, "allow_extra_args": True}

    @stub.command(help=f"{help_text} (unavailable: {exc})", context_settings=swallow_everything)
    def _fail(args: Optional[list[str]] = typer.Argument(None, hidden=True)) -> None:
        from ..exceptions import ConfigurationError

        raise ConfigurationError(
            f"`fleetflow {cmd_name}` is unavailable because an import failed ({exc}); "
            "install the missing extra, e.g. pip install 'fleetflow[aws]'"
        )

    command = typer.main.get_command(stub)
    command.name = cmd_name
    return command


def _lazy_modules() -> dict[str, str]:
    return {name: module for name, module, _ in SUBCOMMANDS}


app = typer.Typer(
    name="fleetflow",
    cls=_LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    help="fleetflow: Python workflows whose sub-flows each run on their own process or ECS task.",
)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"fleetflow {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: bool = typer.Option(False, "--version", "-V", is_eager=True, callback=_print_version,
                                      help="Print the version and exit."),
) -> None:
    """fleetflow: Python workflows whose sub-flows each run on their own process or ECS task.

    Set FLEETFLOW_DATABASE_URL (PostgreSQL) or FLEETFLOW_API_URL (server) to leave the embedded
    SQLite store under FLEETFLOW_HOME. Set FLEETFLOW_DEBUG=1 to see tracebacks.
    """


@app.command("version")
def version(json_output: bool = typer.Option(False, "--json", help="Print JSON instead of text.")) -> None:
    """Print fleetflow and Python versions and which store this shell talks to."""
    from ._output import console, kv_grid, mask_url, print_json

    info = _version_info()
    if json_output:
        print_json(info)
        return
    console().print(
        kv_grid(
            [
                ("fleetflow", info["fleetflow"]),
                ("python", f"{info['python']} ({info['python_executable']})"),
                ("store", mask_url(info["database_url"])),
                ("api url", mask_url(info["api_url"]) if info["api_url"] else "not set (embedded store)"),
                ("home", info["home"]),
            ]
        )
    )


def _version_info() -> dict[str, Any]:
    """Everything `version` reports; the store URL already has its password masked."""
    import platform
    import sys

    from .. import __version__
    from ..settings import get_settings
    from ._output import mask_url

    settings = get_settings()
    return {
        "fleetflow": __version__,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "database_url": mask_url(settings.database_url or settings.resolved_database_url()),
        "api_url": mask_url(settings.api_url) if settings.api_url else None,
        "api_url_set": bool(settings.api_url),
        "home": str(settings.home.expanduser()),
    }


def main() -> None:
    """Entry point for ``python -m fleetflow``."""
    app(prog_name="fleetflow")


__all__ = ["app", "main", "SUBCOMMANDS"]
