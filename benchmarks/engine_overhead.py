"""Per-task overhead of the engine, and start-up time to the first task.

One flow calls N trivial tasks, sequentially and with ``.submit()``, on the embedded SQLite
store with every state change committed. Overhead per task run = (flow time - the same calls
as plain functions) / N. Start-up = wall time from launching ``python script.py`` to the
first task body running, in a fresh process with a fresh store.

    python benchmarks/engine_overhead.py [N] [--api]

``--api``: the same flows through a local ``fleetflow server start`` (its own process, SQLite
behind it). The HTTP client defers task-run writes and log lines into batches
(``FLEETFLOW_API_DEFER_RUN_WRITES``); the flow's time includes waiting until all of them are
stored, since its final state is sent only then. The same run also measures the embedded
path right before, as a reference for how loaded the machine was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import record, summary  # noqa: E402

API = "--api" in sys.argv
_ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
N = int(_ARGS[0]) if _ARGS else 1000
REPEATS = 3

_STARTUP = textwrap.dedent(
    """
    import sys, time
    from fleetflow import flow, task

    @task
    def first():
        print(time.time(), flush=True)

    @flow
    def f():
        first()

    f()
    """
)


def measure_overhead(fresh_home: bool = True) -> dict[str, float]:
    from fleetflow.client import reset_client
    from fleetflow.settings import reset_settings

    if fresh_home:
        os.environ["FLEETFLOW_HOME"] = tempfile.mkdtemp(prefix="ff-bench-")
    reset_settings()
    reset_client()
    from fleetflow import flow, task

    def plain(i: int) -> int:
        return i + 1

    t_plain = task(plain)

    @flow
    def sequential(n: int) -> int:
        return sum(t_plain(i) for i in range(n))

    @flow
    def submitted(n: int) -> int:
        return sum(f.result() for f in [t_plain.submit(i) for i in range(n)])

    sequential(10)  # warm up imports, schema, caches
    base = _timed(lambda: sum(plain(i) for i in range(N)))
    seq = min(_timed(lambda: sequential(N)) for _ in range(REPEATS))
    sub = min(_timed(lambda: submitted(N)) for _ in range(REPEATS))
    return {"sequential_ms_per_task": (seq - base) / N * 1000, "submit_ms_per_task": (sub - base) / N * 1000}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_startup(samples: int = 5) -> dict[str, float]:
    values = []
    for _ in range(samples):
        with tempfile.TemporaryDirectory() as home:
            script = os.path.join(home, "script.py")
            open(script, "w").write(_STARTUP)
            start = time.time()
            out = subprocess.run([sys.executable, script], capture_output=True, text=True,
                                 env={**os.environ, "FLEETFLOW_HOME": home}, check=True)
            values.append(float(out.stdout.split()[0]) - start)
    return summary(values)


def main() -> None:
    if API:
        return main_api()
    overhead = measure_overhead()
    startup = measure_startup()
    print(f"tasks per flow: {N} (SQLite, every state committed)")
    print(f"  sequential : {overhead['sequential_ms_per_task']:.3f} ms per task run   (target <= 0.6)")
    print(f"  .submit()  : {overhead['submit_ms_per_task']:.3f} ms per task run")
    print(f"  start-up to first task: p50 {startup['p50']:.3f} s, max {startup['max']:.3f} s   (target < 0.5)")
    path = record("engine_overhead", {"n_tasks": N, **overhead, "startup_seconds": startup,
                                      "targets": {"ms_per_task": 0.6, "startup_seconds": 0.5},
                                      "comparison": {"prefect_2_10_ms_per_task": "120-135", "prefect_3_8_ms_per_task": "6-7"}})
    print(f"recorded in {path}")


def main_api() -> None:
    from _server import local_server

    embedded = measure_overhead()
    home = tempfile.mkdtemp(prefix="ff-bench-api-")
    with local_server(home):
        overhead = measure_overhead(fresh_home=False)
    print(f"tasks per flow: {N} (through a local fleetflow server over HTTP, SQLite behind it)")
    print(f"  sequential : {overhead['sequential_ms_per_task']:.3f} ms per task run   (target <= 1.5)")
    print(f"  .submit()  : {overhead['submit_ms_per_task']:.3f} ms per task run")
    print(f"  embedded, measured just before (machine load reference): sequential "
          f"{embedded['sequential_ms_per_task']:.3f}, .submit() {embedded['submit_ms_per_task']:.3f} ms per task run "
          f"(0.27 / 0.50 on a quiet machine)")
    path = record("engine_overhead_api", {"n_tasks": N, **overhead, "targets": {"ms_per_task": 1.5},
                                          "embedded_same_run": embedded, "load_average": os.getloadavg(),
                                          "comparison": {"prefect_3_ms_per_task_local_server": "6-7"}})
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
