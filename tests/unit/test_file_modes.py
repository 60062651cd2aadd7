"""FLEETFLOW_HOME is 0700; the SQLite store (db, WAL, SHM), results, stored bundles and the key
are 0600, whatever the umask (issue 11, section 5). Runs in a subprocess with umask 000."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

CODE = r"""
import os, json, sys
os.umask(0)
from pathlib import Path
from fleetflow import flow
from fleetflow.client import get_client
from fleetflow.blocks.secrets import *  # noqa: F401,F403 - the key is created on first use
from fleetflow.bundles import build_bundle, upload_bundle
from fleetflow.filesystems import LocalFileSystem

@flow
def big():
    return {1: set(range(3))}  # not JSON: pickled to the results folder

big()
store = get_client()
storage = LocalFileSystem(basepath=str(Path(os.environ["FLEETFLOW_HOME"]) / "storage"))
project = Path(sys.argv[1]); project.mkdir(); (project / "flows.py").write_text("x = 1\n")
upload_bundle(build_bundle(project), storage)
from fleetflow.aws import AwsCredentials
AwsCredentials(aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="secret-value").save("k", overwrite=True)
print("ok")
"""


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_home_store_results_bundles_and_key_are_private(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "FLEETFLOW_HOME": str(home)}
    env.pop("FLEETFLOW_DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-c", CODE, str(tmp_path / "project")], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]
    assert _mode(home) == 0o700
    files = [p for p in home.rglob("*") if p.is_file()]
    modes = {str(p.relative_to(home)): oct(_mode(p)) for p in files}
    db = [p for p in files if p.name.startswith("fleetflow.db")]
    assert db and all(_mode(p) == 0o600 for p in db), modes
    for folder in ("results", "storage"):
        stored = [p for p in files if p.relative_to(home).parts[0] == folder]
        assert stored and all(_mode(p) == 0o600 for p in stored), json.dumps(modes)
    keys = [p for p in files if p.name.endswith(".key")]
    assert keys and all(_mode(p) == 0o600 for p in keys), modes
    # nothing else under HOME is readable by others (an extracted-bundle cache keeps the code's own modes)
    assert not [name for name, mode in modes.items() if int(mode, 8) & 0o077 and "bundles" not in name], modes
