"""Prefect-compatible ``prefect.artifacts``: markdown, tables and links published by a run.

Each artifact is stored with the flow run (and task run) that created it, listed by
``fleetflow artifact ls`` and shown by ``fleetflow flow-run inspect``. Outside a run an
artifact is stored without a run. Each call returns the new artifact's id.
"""

from __future__ import annotations

import re
from typing import Any

from .engine.context import flow_run_ctx, task_run_ctx
from .exceptions import ConfigurationError

_KEY_RE = re.compile(r"^[a-z0-9-]+$")


def _check_key(key: str | None) -> str | None:
    if key is not None and not _KEY_RE.match(key):
        raise ConfigurationError(
            f"artifact key {key!r} must contain only lowercase letters, numbers and dashes (e.g. 'gtm-report')",
            field="key",
        )
    return key


def _create(type_: str, data: Any, key: str | None, description: str | None) -> str:
    from .client import get_client

    fctx, tctx = flow_run_ctx.get(), task_run_ctx.get()
    client = fctx.client if fctx is not None else get_client()
    artifact = client.create_artifact(
        type_, data, key=_check_key(key), description=description,
        flow_run_id=fctx.flow_run.id if fctx else None, task_run_id=tctx.task_run.id if tctx else None,
    )
    return artifact.id


def create_markdown_artifact(markdown: str, key: str | None = None, description: str | None = None) -> str:
    """Publish a markdown document."""
    return _create("markdown", str(markdown), key, description)


def create_table_artifact(table: Any, key: str | None = None, description: str | None = None) -> str:
    """Publish a table: a list of dicts (rows), a dict of lists (columns) or a list of lists."""
    if isinstance(table, dict):
        columns = list(table)
        rows = [dict(zip(columns, values)) for values in zip(*table.values())]
    elif isinstance(table, (list, tuple)):
        rows = [dict(r) if isinstance(r, dict) else list(r) for r in table]
    else:
        raise ConfigurationError("table must be a list of dicts, a dict of lists or a list of lists", field="table")
    from pydantic_core import to_jsonable_python

    return _create("table", to_jsonable_python(rows, fallback=repr), key, description)


def create_link_artifact(link: str, link_text: str | None = None, key: str | None = None,
                         description: str | None = None) -> str:
    """Publish a link (e.g. to a report or a dashboard)."""
    return _create("link", {"link": link, "link_text": link_text}, key, description)


def render_artifact(artifact: Any) -> str:
    """A one-line text rendering for the CLI."""
    if artifact.type == "link":
        text = artifact.data.get("link_text")
        return f"[{text}]({artifact.data['link']})" if text else artifact.data["link"]
    if artifact.type == "table":
        return f"table with {len(artifact.data or [])} row(s)"
    first = (artifact.data or "").strip().splitlines()
    return first[0][:80] if first else ""


__all__ = ["create_markdown_artifact", "create_table_artifact", "create_link_artifact"]
