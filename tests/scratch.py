"""Where the suite keeps its scratch files: in memory (``/dev/shm``) when the machine has room.

Why: CI's disk here is ext4 mounted with ``discard``, where deleting files is slow. Removing a
session's 120 PostgreSQL test databases took 37 s at load 17, and a test worker's teardown
took up to 105 s. Nothing about the stores changes: SQLite still writes real files, and
PostgreSQL still runs as a real server; only the medium underneath is faster.
``FLEETFLOW_TEST_TMP=disk`` keeps everything on disk; a directory path puts it there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

MIN_FREE_BYTES = 4 << 30  # test venvs, databases and projects stay well under this


def fast_root() -> Path | None:
    """The directory to make scratch directories in, or None for the system default."""
    choice = os.environ.get("FLEETFLOW_TEST_TMP", "")
    if choice == "disk":
        return None
    if choice:
        return Path(choice)
    shm = Path("/dev/shm")
    try:
        usable = shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) and shutil.disk_usage(shm).free >= MIN_FREE_BYTES
    except OSError:
        return None
    return shm if usable else None


def make_dir(prefix: str) -> Path:
    """A new private directory under :func:`fast_root` (or the system temp dir)."""
    root = fast_root()
    return Path(tempfile.mkdtemp(prefix=prefix, dir=str(root) if root else None))
