"""Several processes on one store: claims are exactly-once and writers never see
"database is locked". Child processes are plain ``python -c`` scripts lined up on a file
barrier (:mod:`barrier`), and each reports when its first and last transactions ran, so the
test proves the processes really worked on the store at the same time."""

from __future__ import annotations

import json
import subprocess
import sys

from barrier import child_env
from fleetflow.orchestrator import Orchestrator
from fleetflow.states import Scheduled, StateType

_CLAIMER = """
import json, sys, time
from barrier import FileBarrier
from fleetflow.orchestrator import Orchestrator
url, name, barrier_dir, parties = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
barrier = FileBarrier(barrier_dir, parties, name)
store = Orchestrator.create(url)
barrier.arrive("ready")
claimed = [r.id for r in store.claim_flow_runs("pool", name, limit=5)]
first = time.monotonic()
barrier.arrive("claimed-once")  # every claimer holds a batch before any goes on
empty = 0
while empty < 3:
    last = time.monotonic()
    got = store.claim_flow_runs("pool", name, limit=5)
    claimed += [r.id for r in got]
    empty = 0 if got else empty + 1
print(json.dumps({"claimed": claimed, "first": first, "last": last}))
"""

_WRITER = """
import json, sys, time
from barrier import FileBarrier
from fleetflow.orchestrator import Orchestrator
from fleetflow.orchestrator.schemas import LogRecord
from fleetflow.states import Pending, Running, Completed
url, name, barrier_dir, parties = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
barrier = FileBarrier(barrier_dir, parties, name)
store = Orchestrator.create(url)
barrier.arrive("ready")
run = store.create_flow_run("writer", state=Running())
def one(i):
    task = store.create_task_run(run.id, "k", "t", dynamic_key=str(i), states=[Pending(), Running()])
    store.write_logs([LogRecord(flow_run_id=run.id, task_run_id=task.id, message=str(i), timestamp=task.created)])
    store.set_task_run_state(task.id, Completed())
one(0)
first = time.monotonic()
barrier.arrive("wrote-once")  # every writer has committed before any goes on
last = time.monotonic()
for i in range(1, 100):
    one(i)
store.set_flow_run_state(run.id, Completed())
print(json.dumps({"first": first, "last": last}))
"""


def _run_together(script: str, argv: list[list[str]], barrier_dir) -> list[dict]:
    """Start one child per argv, lined up on a barrier in ``barrier_dir``; their JSON reports."""
    barrier_dir.mkdir()
    parties = str(len(argv))
    procs = [
        subprocess.Popen([sys.executable, "-c", script, *args, str(barrier_dir), parties], env=child_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for args in argv
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "database is locked" not in err
    return [json.loads(out) for out, _ in outputs]


def _assert_overlapped(reports: list[dict]) -> None:
    """Every child's later work began after every child's first transaction: they overlapped."""
    assert max(r["first"] for r in reports) < min(r["last"] for r in reports), reports


def test_processes_claim_each_run_exactly_once(orchestrator: Orchestrator, store_url: str, tmp_path):
    ids = {orchestrator.create_flow_run("f", state=Scheduled(), work_pool_name="pool").id for _ in range(200)}
    reports = _run_together(_CLAIMER, [[store_url, f"worker-{i}"] for i in range(4)], tmp_path / "barrier")
    _assert_overlapped(reports)
    per_worker = [r["claimed"] for r in reports]
    assert all(len(claimed) >= 5 for claimed in per_worker)  # everyone won batches while the others claimed
    claimed = [run_id for ids_ in per_worker for run_id in ids_]
    assert len(claimed) == len(set(claimed)) == 200 and set(claimed) == ids
    runs = orchestrator.read_flow_runs(work_pool_name="pool", limit=500)
    assert all(r.state.type is StateType.PENDING for r in runs)
    by_worker = {f"worker-{i}": set(ids_) for i, ids_ in enumerate(per_worker)}
    assert all(r.id in by_worker[r.worker_name] for r in runs)
    assert all(len(orchestrator.read_flow_run_states(r.id)) == 2 for r in runs[:20])


def test_processes_write_concurrently(orchestrator: Orchestrator, store_url: str, tmp_path):
    reports = _run_together(_WRITER, [[store_url, f"writer-{i}"] for i in range(4)], tmp_path / "barrier")
    _assert_overlapped(reports)
    runs = orchestrator.read_flow_runs(flow_name="writer")
    assert len(runs) == 4 and all(r.state.type is StateType.COMPLETED for r in runs)
    for run in runs:
        task_runs = orchestrator.read_task_runs(run.id)
        assert len(task_runs) == 100 and all(t.state.type is StateType.COMPLETED for t in task_runs)
        assert len(orchestrator.read_logs(flow_run_id=run.id)) == 100
