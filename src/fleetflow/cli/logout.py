"""``fleetflow logout``: remove the saved server profile."""

from __future__ import annotations

import typer

from ._output import note, success

app = typer.Typer(help="Remove the saved server profile.", invoke_without_command=True)


@app.callback()
def logout() -> None:
    """Forget the URL and key saved by `fleetflow login`."""
    from ..client.profile import profile_path, remove_profile

    if remove_profile():
        success(f"Logged out; removed {profile_path()}.")
    else:
        note("Not logged in (no saved profile).")
