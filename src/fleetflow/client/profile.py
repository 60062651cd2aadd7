"""The saved server profile: ``fleetflow login --url URL --key KEY`` writes
``FLEETFLOW_HOME/profile.json`` (mode 0600); ``fleetflow logout`` removes it. Environment
variables (``FLEETFLOW_API_URL``/``FLEETFLOW_API_KEY``) take precedence over the profile."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError
from ..settings import get_settings


def profile_path() -> Path:
    return get_settings().home.expanduser() / "profile.json"


def read_profile() -> dict[str, Any] | None:
    path = profile_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not data.get("url"):
            raise ValueError("no url")
    except ValueError:
        raise ConfigurationError(
            f"the saved profile {path} is not valid; run `fleetflow logout` and `fleetflow login` again.", field="api_url"
        ) from None
    return data


def write_profile(url: str, key: str | None) -> Path:
    """Write the profile atomically with 0600 permissions (it holds a key)."""
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"url": url, "key": key}, fh)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def remove_profile() -> bool:
    try:
        profile_path().unlink()
        return True
    except FileNotFoundError:
        return False
