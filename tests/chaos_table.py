"""The chaos table: one row per scenario (runs lost / executed twice / stuck / time to settle),
collected from every xdist worker into one file and printed at the end of the session.

A plain module in ``tests/`` because the printing happens on xdist's controller, which loads
only the root conftest (tests/chaos/conftest.py is loaded by the workers that collect it).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

TABLE_ENV = "FLEETFLOW_CHAOS_TABLE"


def open_table() -> str | None:
    """On the controller (or a run without xdist): a fresh file for the rows, named in the
    environment that xdist workers inherit; None when one is already named."""
    if TABLE_ENV in os.environ:
        return None
    fd, path = tempfile.mkstemp(prefix="fleetflow-chaos-", suffix=".jsonl")
    os.close(fd)
    os.environ[TABLE_ENV] = path
    return path


def record(row: dict[str, Any]) -> None:
    """Append one scenario's row (a no-op outside a pytest session that opened the table)."""
    path = os.environ.get(TABLE_ENV)
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(row) + "\n")


def take_rows(path: str) -> list[dict[str, Any]]:
    """The rows written so far; the file is removed."""
    if not os.path.exists(path):
        return []
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    os.unlink(path)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'scenario':<44} {'backend':<9} {'runs':>4} {'lost':>4} {'twice':>5} {'stuck':>5} {'settle s':>8}"
    lines = [head, "-" * len(head)]
    for r in sorted(rows, key=lambda r: (r["scenario"], r["backend"])):
        lines.append(f"{r['scenario']:<44} {r['backend']:<9} {r['runs']:>4} {r['lost']:>4} {r['twice']:>5} "
                     f"{r['stuck']:>5} {r['settle_seconds']:>8.2f}")
    return "\n".join(lines)
