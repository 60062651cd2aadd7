"""A forked run starts as the worker meant it to: its environment becomes exactly the one the
worker computed, whatever the template's was; and the template's warm-up of a run's code leaves
nothing behind that would change a child (no store, no thread)."""

from __future__ import annotations

import os

from fleetflow.fork_template import replace_environment


def test_the_environment_becomes_the_assignments_exactly():
    saved = dict(os.environ)
    try:
        os.environ["FF_TEST_ONLY_TEMPLATE"] = "1"
        os.environ["FF_TEST_CHANGED"] = "old"
        os.environ["FF_TEST_SAME"] = "same"
        before = dict(os.environ)
        after = {k: v for k, v in before.items() if k != "FF_TEST_ONLY_TEMPLATE"}
        after.update(FF_TEST_CHANGED="new", FF_TEST_ADDED="added")
        replace_environment(before, after)
        assert dict(os.environ) == after
        assert os.getenv("FF_TEST_ONLY_TEMPLATE") is None and os.getenv("FF_TEST_CHANGED") == "new"
    finally:
        os.environ.clear()
        os.environ.update(saved)


REHEARSAL = """
import json, os, sys, threading
from fleetflow.orchestrator import lite_rehearsal
from fleetflow.usage import recorder
lite_rehearsal.prepare_statements()
lite_rehearsal.rehearse_launch_path(rounds=3)
recorder.rehearse(rounds=3)
print(json.dumps({"threads": threading.active_count(), "files": sorted(os.listdir(os.environ["FLEETFLOW_HOME"])),
                  "sqlalchemy": "sqlalchemy" in sys.modules}))
"""


def test_the_templates_rehearsal_writes_nothing_and_starts_no_thread(tmp_path):
    """The fork server's template warms a run's code paths on sample values: no store is
    opened or created, no thread is left (the template must stay forkable), no SQLAlchemy."""
    import json
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    out = subprocess.run([sys.executable, "-c", REHEARSAL], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "FLEETFLOW_HOME": str(home)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"threads": 1, "files": [], "sqlalchemy": False}


PRELOAD = """
import json, sys
from fleetflow import fork_template
fork_template._preload()
print(json.dumps({"sqlalchemy": "sqlalchemy" in sys.modules, "deployments": "fleetflow.deployments" in sys.modules,
                  "worker_loop": "fleetflow.worker.loop" in sys.modules}))
"""


def test_the_template_holds_what_runs_use_and_no_sqlalchemy(tmp_path):
    """Each page of the template costs every child at its fork and its exit: a run's store
    calls are on the plain SQLite path, so SQLAlchemy (and the worker's loop) stay out of it,
    while ``fleetflow.deployments`` (a parent flow's ``run_deployment``) is preloaded."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PRELOAD], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "FLEETFLOW_HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"sqlalchemy": False, "deployments": True,
                                                                "worker_loop": False}
