"""Several processes on one store: claims are exactly-once and writers never see
"database is locked". Child processes are plain ``python -c`` scripts started together."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from fleetflow.orchestrator import Orchestrator
from fleetflow.states import Scheduled, StateType

_CLAIMER = """
import json, sys, time
from fleetflow.orchestrator import Orchestrator
url, name, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
store = Orchestrator.create(url)
time.sleep(max(0.0, start - time.time()))
claimed, empty = [], 0
while empty < 3:
    got = store.claim_flow_runs("pool", name, limit=5)
    claimed += [r.id for r in got]
    empty = 0 if got else empty + 1
print(json.dumps(claimed))
"""

_WRITER = """
import sys, time
from fleetflow.orchestrator import Orchestrator
from fleetflow.orchestrator.schemas import LogRecord
from fleetflow.states import Pending, Running, Completed
url, start = sys.argv[1], float(sys.argv[2])
store = Orchestrator.create(url)
time.sleep(max(0.0, start - time.time()))
run = store.create_flow_run("writer", state=Running())
for i in range(100):
    task = store.create_task_run(run.id, "k", "t", dynamic_key=str(i), states=[Pending(), Running()])
    store.write_logs([LogRecord(flow_run_id=run.id, task_run_id=task.id, message=str(i), timestamp=task.created)])
    store.set_task_run_state(task.id, Completed())
store.set_flow_run_state(run.id, Completed())
"""


def _run_together(script: str, argv: list[list[str]]) -> list[str]:
    start = time.time() + 3.0  # all children are imported and connected before this instant
    procs = [
        subprocess.Popen([sys.executable, "-c", script, *args, str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args in argv
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "database is locked" not in err
    return [out for out, _ in outputs]


def test_processes_claim_each_run_exactly_once(orchestrator: Orchestrator, store_url: str):
    ids = {orchestrator.create_flow_run("f", state=Scheduled(), work_pool_name="pool").id for _ in range(200)}
    outputs = _run_together(_CLAIMER, [[store_url, f"worker-{i}"] for i in range(4)])
    per_worker = [json.loads(out) for out in outputs]
    claimed = [run_id for ids_ in per_worker for run_id in ids_]
    assert len(claimed) == len(set(claimed)) == 200 and set(claimed) == ids
    runs = orchestrator.read_flow_runs(work_pool_name="pool", limit=500)
    assert all(r.state.type is StateType.PENDING for r in runs)
    by_worker = {f"worker-{i}": set(ids_) for i, ids_ in enumerate(per_worker)}
    assert all(r.id in by_worker[r.worker_name] for r in runs)
    assert all(len(orchestrator.read_flow_run_states(r.id)) == 2 for r in runs[:20])


def test_processes_write_concurrently(orchestrator: Orchestrator, store_url: str):
    _run_together(_WRITER, [[store_url] for _ in range(4)])
    runs = orchestrator.read_flow_runs(flow_name="writer")
    assert len(runs) == 4 and all(r.state.type is StateType.COMPLETED for r in runs)
    for run in runs:
        task_runs = orchestrator.read_task_runs(run.id)
        assert len(task_runs) == 100 and all(t.state.type is StateType.COMPLETED for t in task_runs)
        assert len(orchestrator.read_logs(flow_run_id=run.id)) == 100
