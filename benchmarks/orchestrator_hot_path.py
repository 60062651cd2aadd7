"""Time the engine's per-task store calls: create_task_run([Pending, Running]) then
set_task_run_state(Completed), on SQLite (default) or the URL given as argv[1].

    python benchmarks/orchestrator_hot_path.py [URL] [N]

Prints wall-clock best/median and the best CPU time (this process only: the least disturbed
by other load on the machine) in milliseconds per task run, over 7 batches of N.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

from fleetflow.orchestrator import Orchestrator
from fleetflow.states import Completed, Pending, Running


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 and "://" in sys.argv[1] else None
    n = int(sys.argv[-1]) if sys.argv[-1].isdigit() else 1000
    with tempfile.TemporaryDirectory() as tmp:
        store = Orchestrator.create(url or f"sqlite:///{tmp}/bench.db")
        flow_run = store.create_flow_run("bench", state=Running())
        batches, cpu = [], []
        for _ in range(7):
            start, start_cpu = time.perf_counter(), time.process_time()
            for i in range(n):
                task = store.create_task_run(flow_run.id, "bench.task", "task", dynamic_key=str(i), states=[Pending(), Running()])
                store.set_task_run_state(task.id, Completed(data={"result": i}))
            batches.append((time.perf_counter() - start) / n * 1000)
            cpu.append((time.process_time() - start_cpu) / n * 1000)
        store.dispose()
    print(f"{type(store).__name__}: wall best {min(batches):.3f} ms, median {statistics.median(batches):.3f} ms; "
          f"CPU best {min(cpu):.3f} ms per task run (create [Pending, Running] + Completed; {n} per batch)")


if __name__ == "__main__":
    main()
