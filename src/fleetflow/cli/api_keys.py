"""``fleetflow api-key``: create, list and revoke scoped API keys.

Works against the embedded store on the server's machine, or over HTTP with an admin key
(``FLEETFLOW_API_URL`` / ``fleetflow login``). A key is printed once, at creation."""

from __future__ import annotations

import datetime as dt
import re
from typing import Optional

import typer

from ..exceptions import ConfigurationError
from ._output import console, fmt_ago, fmt_time, open_client, print_json, success, table

app = typer.Typer(help="Create, list and revoke the server's scoped API keys.", no_args_is_help=True)
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: Optional[str], now: Optional[dt.datetime] = None) -> Optional[dt.datetime]:
    """``30d``, ``12h``, ``2w`` ... -> an aware UTC datetime (None: never expires)."""
    if not text:
        return None
    match = _DURATION.match(text.strip())
    if not match:
        raise ConfigurationError(f"--expires {text!r}: use a number and a unit, e.g. 30d, 12h, 2w or 90m", field="expires")
    now = now or dt.datetime.now(dt.timezone.utc)
    return now + dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Unique key name."),
    scope: str = typer.Option(..., "--scope", help="read, run, worker or admin."),
    expires: Optional[str] = typer.Option(None, "--expires", help="Lifetime, e.g. 30d (default: never)."),
    json_output: bool = typer.Option(False, "--json", help='Print {"name", "key", "scope"} as JSON.'),
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from ..orchestrator.keys import _scope

    key, secret = open_client().create_api_key(name, _scope(scope), expires=parse_expiry(expires))
    if json_output:
        print_json({"name": key.name, "key": secret, "scope": key.scope.value,
                    "expires": key.expires.isoformat() if key.expires else None})  # fmt: skip
        return
    success(f"Created {key.scope.value} key {key.name!r}. It is shown only now:")
    print(secret)


@app.command("ls")
def ls(json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Name, scope, created, last used and expiry of every key (never the key)."""
    keys = open_client().read_api_keys()
    if json_output:
        print_json([k.model_dump(mode="json") for k in keys])
        return
    out = table("NAME", "SCOPE", "CREATED", "LAST USED", "EXPIRES", "STATUS")
    for k in keys:
        status = "revoked" if k.revoked else ("active" if k.active else "expired")
        out.add_row(k.name, k.scope.value, fmt_time(k.created), fmt_ago(k.last_used),
                    fmt_time(k.expires) if k.expires else "never", status)  # fmt: skip
    console().print(out)


@app.command("revoke")
def revoke(name: str = typer.Argument(..., help="Name of the key to revoke.")) -> None:
    """Revoke a key; requests with it are refused from now on."""
    key = open_client().revoke_api_key(name)
    success(f"Revoked key {key.name!r}.")
