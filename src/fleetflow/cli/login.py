"""``fleetflow login --url URL --key KEY``: save the server profile (0600, under FLEETFLOW_HOME)."""

from __future__ import annotations

import typer

from ._output import success

app = typer.Typer(help="Save a server URL and API key as this machine's profile.", invoke_without_command=True)


@app.callback()
def login(
    url: str = typer.Option(..., "--url", help="Server URL, e.g. https://fleetflow.example.com"),
    key: str = typer.Option(..., "--key", help="API key (from `fleetflow api-key create`)."),
) -> None:
    """Check the key against the server, then save URL and key; clients use them when
    FLEETFLOW_API_URL is not set."""
    from ..client.http import HTTPClient
    from ..client.profile import write_profile

    client = HTTPClient(url, api_key=key, retry_seconds=5)
    try:
        client.read_work_pools()  # any authenticated read: fails with a clear error on a bad key
    finally:
        client.close()
    path = write_profile(url.rstrip("/"), key)
    success(f"Logged in to {url}; profile saved to {path} (mode 0600).")
