"""The flow-run page of a run with 1,000 task runs, on its own: a quick before/after check of
that page's server time without ui_scale.py's million-run seeding.

Seeds a fresh PostgreSQL store with ui_scale.py's data at a small size (default 2,000 flow
runs and their task runs, plus ui_scale's big run: 1,000 task runs, four children, a state
history and 2,000 log lines), then requests the big run's page in-process (FastAPI's
TestClient, no network) and prints p50/p95. ``--profile`` adds where the time goes.

Run: ``python benchmarks/ui_run_page.py [--runs 2000] [--samples 200] [--profile]``.
Records ``benchmarks/results/ui_run_page.json``; the figure at scale is ui_scale.py's.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _common import record, summary  # noqa: E402


def _option(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


RUNS = _option("--runs", 2000)
SAMPLES = _option("--samples", 200)


def main() -> None:
    import ui_scale
    from fastapi.testclient import TestClient
    from pg_server import PostgresServer

    from fleetflow.orchestrator import Orchestrator
    from fleetflow.server.app import create_app
    from fleetflow.server.ui import ui_router

    ui_scale.N = RUNS  # ui_scale's seeding reads its module-level size
    pg = PostgresServer(dbname="ui_run_page").start()
    try:
        ui_scale.seed(pg.url)
        store = Orchestrator.create(pg.url)
        try:
            client = TestClient(create_app(store, auth=False, ui_router=ui_router()))
            path = f"/runs/{ui_scale.BIG}"
            first = client.get(path)
            assert first.status_code == 200, first.text[:500]
            values = []
            for _ in range(SAMPLES):
                start = time.perf_counter()
                assert client.get(path).status_code == 200
                values.append(time.perf_counter() - start)
            figures = {k: round(v * 1000, 2) for k, v in summary(values).items()}
            print(f"run page (1,000 task runs): p50 {figures['p50']} ms  p95 {figures['p95']} ms  ({len(first.content):,} bytes)")
            cpu = _route_cpu(store, path)
            print(f"route CPU time in this process (load-independent): p50 {cpu['p50']} ms  p95 {cpu['p95']} ms")
            if "--profile" in sys.argv:
                _profile(store, path)
        finally:
            store.dispose()
    finally:
        pg.stop()
    out = record("ui_run_page", {"flow_runs": RUNS, "samples": SAMPLES, "run_page_ms": figures, "route_cpu_ms": cpu, "bytes": len(first.content),
                                 "note": "in-process TestClient on a small PostgreSQL store; rendering cost, not scale"})  # fmt: skip
    print(f"recorded {out}")


def _direct(store, path: str):
    """A call of the route in this thread, with its request and viewer (auth off)."""
    from starlette.requests import Request

    from fleetflow.server.api.context import ServerContext
    from fleetflow.server.ui.routes_runs import run_page
    from fleetflow.server.ui.session import viewer

    ctx = ServerContext(store, auth=False)
    request = Request({"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b"",
                       "scheme": "http", "server": ("127.0.0.1", 80), "root_path": ""})  # fmt: skip
    who, run_id = viewer(request, ctx), path.rsplit("/", 1)[1]
    return lambda: run_page(request, run_id, who, ctx)


def _route_cpu(store, path: str) -> dict[str, float]:
    """CPU time of this thread per call of the route (the database's own work is in the
    server's processes): what the page costs the server's Python, whatever the machine's load."""
    call = _direct(store, path)
    call()
    values = []
    for _ in range(SAMPLES):
        start = time.thread_time()
        call()
        values.append(time.thread_time() - start)
    return {k: round(v * 1000, 2) for k, v in summary(values).items()}


def _profile(store, path: str) -> None:
    """Profile the route in this thread (the TestClient serves requests on another one)."""
    import cProfile
    import pstats

    call = _direct(store, path)
    call()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(50):
        call()
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
