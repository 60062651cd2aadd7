"""``fleetflow server start``: serve the settings' store over HTTP."""

from __future__ import annotations

from typing import Optional

import typer

app = typer.Typer(help="Start the fleetflow API server over the store.", no_args_is_help=True)


@app.callback()
def _server() -> None:
    """The fleetflow API server (`fleetflow server start`)."""


@app.command("start")
def start(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (non-loopback needs auth)."),
    port: int = typer.Option(4200, "--port", help="Port to listen on (0: any free port)."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve everyone as admin (loopback hosts only)."),
    database_url: Optional[str] = typer.Option(
        None, "--database-url", help="Store URL (default FLEETFLOW_DATABASE_URL or the SQLite file under FLEETFLOW_HOME)."
    ),
) -> None:
    """Serve the store that the settings name: SQLite under FLEETFLOW_HOME by default, or
    FLEETFLOW_DATABASE_URL. SIGTERM drains in-flight requests before exiting."""
    from ..orchestrator.service import Orchestrator
    from ..server.serve import check_host, serve
    from ..settings import get_settings
    from ._output import mask_url

    check_host(host, not no_auth)  # before touching the store
    url = database_url or get_settings().resolved_database_url()
    store = Orchestrator.create(url)

    def announce(api_url: str, first_key: Optional[str]) -> None:
        print(f"fleetflow server listening on {api_url} (store {mask_url(url)}); web UI at {api_url}/, "
              f"API docs at {api_url}/docs", flush=True)
        if first_key:
            print("No API keys existed, so an admin key was created. It is shown only now; keep it safe:", flush=True)
            print(f"  FLEETFLOW_API_URL={api_url} FLEETFLOW_API_KEY={first_key}", flush=True)
            print(f"  UI and API: {api_url}/  (create narrower keys with `fleetflow api-key create NAME --scope run`)",
                  flush=True)  # fmt: skip

    try:
        serve(store, host, port, auth=not no_auth, announce=announce)
    finally:
        store.dispose()
