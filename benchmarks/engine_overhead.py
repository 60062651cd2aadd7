"""Per-task overhead of the engine, and start-up time to the first task.

One flow calls N trivial tasks, sequentially and with ``.submit()``, with every state change
recorded. Overhead per task run = (flow time - the same calls as plain functions) / N, wall
and CPU (CPU counts every thread: the group-commit flusher too). Each variant runs in its own
process: group commit on (the default window) and off (``FLEETFLOW_GROUP_COMMIT_WINDOW=0``,
one commit per write), each with Prefect's per-task log lines on (default) and off, with the
console a pipe; and the default once more with the console a terminal, and once on a store
that already holds 100,000 task runs. Start-up =
wall time from launching ``python script.py`` to the first task body, on an existing store
(plus the process's CPU time by then, which a loaded machine inflates less than wall time,
and how many modules were loaded), with the bytecode caches written as ``pip install`` does
(the first run writes them even under ``PYTHONDONTWRITEBYTECODE``; without them every process
compiles SQLAlchemy and pydantic from source, which more than doubles start-up).

    python benchmarks/engine_overhead.py [N] [--api] [--postgres]
    python benchmarks/engine_overhead.py --startup    # start-up only (engine_overhead_startup.json)

``--api``: the same flows through a local ``fleetflow server start`` (its own process, SQLite
behind it). The HTTP client defers task-run writes and log lines into batches
(``FLEETFLOW_API_DEFER_RUN_WRITES``); the flow's time includes waiting until all of them are
stored, since its final state is sent only then. The same run also measures the embedded
path right before, as a reference for how loaded the machine was. ``--postgres``: the store on a temporary local
PostgreSQL server (the test suite's, tests/pg_server.py) instead of SQLite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from _common import record, summary  # noqa: E402

API = "--api" in sys.argv
STARTUP_ONLY = "--startup" in sys.argv
POSTGRES = "--postgres" in sys.argv
_ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
N = int(_ARGS[0]) if _ARGS else 1000
REPEATS = 3
VARIANTS = {  # name -> environment
    "group_commit": {},
    "group_commit_no_log_lines": {"FLEETFLOW_TASK_RUN_LOG_LINES": "false"},
    "commit_per_write": {"FLEETFLOW_GROUP_COMMIT_WINDOW": "0"},
    "commit_per_write_no_log_lines": {"FLEETFLOW_GROUP_COMMIT_WINDOW": "0", "FLEETFLOW_TASK_RUN_LOG_LINES": "false"},
}

_STARTUP = textwrap.dedent(
    """
    import os, sys, time
    from fleetflow import flow, task

    @task
    def first():
        t = os.times()
        print(time.time(), t.user + t.system, len(sys.modules), int("sqlalchemy" in sys.modules), flush=True)

    @flow
    def f():
        first()

    f()
    """
)


def measure_overhead() -> dict[str, float]:
    """In this process (a child started by :func:`main` with the variant's environment)."""
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
    prefill = int(os.environ.get(PREFILL, "0"))
    if prefill:  # a store that has been in use: its indexes hold this many task runs already
        from fleetflow.settings import reset_settings

        os.environ["FLEETFLOW_TASK_RUN_LOG_LINES"] = "false"  # quicker to fill; measured with them on
        reset_settings()
        for _ in range(prefill // 10_000):
            sequential(10_000)
        del os.environ["FLEETFLOW_TASK_RUN_LOG_LINES"]
        reset_settings()
    base = _timed(lambda: sum(plain(i) for i in range(N)))[0]
    seq = min(_timed(lambda: sequential(N)) for _ in range(REPEATS))
    sub = min(_timed(lambda: submitted(N)) for _ in range(REPEATS))
    return {"sequential_ms_per_task": (seq[0] - base) / N * 1000, "sequential_cpu_ms_per_task": seq[1] / N * 1000,
            "submit_ms_per_task": (sub[0] - base) / N * 1000, "submit_cpu_ms_per_task": sub[1] / N * 1000}


def _timed(fn) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


# The console is a pipe in the variants above (as under a worker, in CI or in a container),
# where run-log lines are written in batches; on a terminal each line is written at once
# (fleetflow/engine/console.py). This variant gives the child a pseudo-terminal for stderr.
TTY_VARIANT = "group_commit_console_on_a_terminal"
# And the default on a store already holding this many task runs (index inserts cost more as
# the indexes grow; fleetflow/engine/ids.py has the figures for random against ordered ids).
PREFILL = "FLEETFLOW_BENCH_PREFILL_TASK_RUNS"
PREFILLED_VARIANT = ("group_commit_store_holding_100k_task_runs", {PREFILL: "100000"})


def _run_variant(env: dict[str, str], terminal: bool = False) -> dict[str, float]:
    command = [sys.executable, __file__, str(N), "--child"]
    if not terminal:
        out = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    import pty
    import threading

    main_fd, child_fd = pty.openpty()
    drained = threading.Thread(target=_drain, args=(main_fd,), daemon=True)
    drained.start()
    try:
        out = subprocess.run(command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=child_fd,
                             text=True, check=True)
    finally:
        os.close(child_fd)
        drained.join(timeout=10)
        os.close(main_fd)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _drain(fd: int) -> None:
    """Read the terminal's output as a terminal emulator would (a full one blocks the writer)."""
    try:
        while os.read(fd, 65536):
            pass
    except OSError:  # the child side closed
        pass


# Start-up variants, measured interleaved: the default, and the store on SQLAlchemy throughout
# (what start-up was before the plain SQLite path; see fleetflow/orchestrator/lite.py).
STARTUP_VARIANTS = {"default": {}, "sqlalchemy_store": {"FLEETFLOW_PLAIN_SQLITE": "false"}}


def measure_startup(samples: int = 7) -> dict[str, dict[str, Any]]:
    """``python script.py`` to the first task body on an existing SQLite store, per variant:
    wall (from before the process starts to the task body), CPU of the process until then, the
    modules loaded, and whether SQLAlchemy was among them."""
    with tempfile.TemporaryDirectory() as home:
        script = os.path.join(home, "script.py")
        open(script, "w").write(_STARTUP)
        env = {**os.environ, "FLEETFLOW_HOME": home}
        # The store exists, and so do the bytecode caches (as after pip install).
        first_env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for extra in STARTUP_VARIANTS.values():
            subprocess.run([sys.executable, script], capture_output=True, env={**first_env, **extra}, check=True)
        runs: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": [], "modules": [], "sqlalchemy": []}
                                                   for name in STARTUP_VARIANTS}
        for _ in range(samples):
            for name, extra in STARTUP_VARIANTS.items():  # interleaved: drift hits both alike
                start = time.time()
                out = subprocess.run([sys.executable, script], capture_output=True, text=True, env={**env, **extra},
                                     check=True)
                at, cpu, loaded, sqlalchemy = out.stdout.split()[:4]
                runs[name]["wall"].append(float(at) - start)
                runs[name]["cpu"].append(float(cpu))
                runs[name]["modules"].append(int(loaded))
                runs[name]["sqlalchemy"].append(int(sqlalchemy))
    return {name: {"wall": summary(r["wall"]), "cpu": summary(r["cpu"]), "modules": max(r["modules"]),
                   "sqlalchemy_loaded": bool(max(r["sqlalchemy"]))} for name, r in runs.items()}


def main_startup() -> None:
    variants = measure_startup(samples=int(_ARGS[0]) if _ARGS else 11)
    _print_startup(variants)
    startup = variants["default"]
    path = record("engine_overhead_startup", {"store": "sqlite", "targets": {"startup_seconds": 0.3},
                                              "startup_seconds": startup["wall"], "startup_cpu_seconds": startup["cpu"],
                                              "startup_modules_loaded": startup["modules"],
                                              "startup_sqlalchemy_loaded": startup["sqlalchemy_loaded"],
                                              "variants": variants})
    print(f"recorded in {path}")


def _print_startup(variants: dict[str, dict[str, Any]]) -> None:
    print(f"start-up to first task (existing SQLite store; target < 0.3 s; load {os.getloadavg()[0]:.1f}):")
    for name, startup in variants.items():
        print(f"  {name:18s} wall p50 {startup['wall']['p50']:.3f} s, min {startup['wall']['min']:.3f} s; "
              f"CPU p50 {startup['cpu']['p50']:.3f} s, min {startup['cpu']['min']:.3f} s; {startup['modules']} modules; "
              f"SQLAlchemy {'loaded' if startup['sqlalchemy_loaded'] else 'not loaded'}")


def main() -> None:
    if "--child" in sys.argv:
        print(json.dumps(measure_overhead()))
        return
    if API:
        return main_api()
    if STARTUP_ONLY:
        return main_startup()
    base_env = {"FLEETFLOW_HOME": tempfile.mkdtemp(prefix="ff-bench-")}
    server = None
    if POSTGRES:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
        from pg_server import PostgresServer

        server = PostgresServer().start()
    try:
        variants = {}
        for name, env in VARIANTS.items():
            if server is not None:
                env = {**env, "FLEETFLOW_DATABASE_URL": server.fresh_database()}
            variants[name] = _run_variant({**base_env, **env})
        if server is None:
            variants[TTY_VARIANT] = _run_variant(base_env, terminal=True)
            name, env = PREFILLED_VARIANT
            variants[name] = _run_variant({"FLEETFLOW_HOME": tempfile.mkdtemp(prefix="ff-bench-"), **env})
    finally:
        if server is not None:
            server.stop()
    store = "PostgreSQL (local server)" if POSTGRES else "SQLite"
    print(f"tasks per flow: {N} ({store}, every state recorded); wall / CPU ms per task run")
    for name, figures in variants.items():
        print(f"  {name:42s} sequential {figures['sequential_ms_per_task']:.3f} / {figures['sequential_cpu_ms_per_task']:.3f}"
              f"   .submit() {figures['submit_ms_per_task']:.3f} / {figures['submit_cpu_ms_per_task']:.3f}")
    data = {"n_tasks": N, "store": "postgresql" if POSTGRES else "sqlite", "variants": variants,
            "sequential_ms_per_task": variants["group_commit"]["sequential_ms_per_task"],
            "submit_ms_per_task": variants["group_commit"]["submit_ms_per_task"],
            "targets": {"ms_per_task": 0.1, "startup_seconds": 0.3}}
    if not POSTGRES:
        variants = measure_startup()
        _print_startup(variants)
        startup = variants["default"]
        data["startup_seconds"] = startup["wall"]
        data["startup_cpu_seconds"] = startup["cpu"]
        data["startup_modules_loaded"] = startup["modules"]
    path = record("engine_overhead_postgres" if POSTGRES else "engine_overhead", data)
    print(f"recorded in {path}")


def main_api() -> None:
    from _server import local_server

    embedded = _run_variant({"FLEETFLOW_HOME": tempfile.mkdtemp(prefix="ff-bench-")})
    home = tempfile.mkdtemp(prefix="ff-bench-api-")
    with local_server(home):
        overhead = measure_overhead()
    print(f"tasks per flow: {N} (through a local fleetflow server over HTTP, SQLite behind it)")
    print(f"  sequential : {overhead['sequential_ms_per_task']:.3f} ms per task run   (target <= 1.5)")
    print(f"  .submit()  : {overhead['submit_ms_per_task']:.3f} ms per task run")
    print(f"  embedded, measured just before (machine load reference): sequential "
          f"{embedded['sequential_ms_per_task']:.3f}, .submit() {embedded['submit_ms_per_task']:.3f} ms per task run")
    path = record("engine_overhead_api", {"n_tasks": N, **overhead, "targets": {"ms_per_task": 1.5},
                                          "embedded_same_run": embedded,
                                          "comparison": {"prefect_3_ms_per_task_local_server": "6-7"}})
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
