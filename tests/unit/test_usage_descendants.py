"""The run's process tree, found through the kernel's children files, is the tree a scan of
every process finds: a child and a grandchild, and nothing once they are gone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fleetflow.usage.sources import descendants, scan_descendants

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")

# The child starts a grandchild, prints its pid, then waits on stdin.
TREE = ("import subprocess, sys; g = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'], "
        "stdin=subprocess.PIPE); print(g.pid, flush=True); sys.stdin.read(); g.stdin.close(); g.wait()")


def test_descendants_match_a_full_scan_and_include_grandchildren():
    child = subprocess.Popen([sys.executable, "-c", TREE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        grandchild = int(child.stdout.readline())
        found = descendants(os.getpid())
        assert {child.pid, grandchild} <= set(found)
        assert sorted(found) == sorted(scan_descendants(os.getpid()))
        assert sorted(descendants(child.pid)) == [grandchild] == sorted(scan_descendants(child.pid))
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    assert child.pid not in descendants(os.getpid()) and descendants(child.pid) == []
