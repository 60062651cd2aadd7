"""Hostile trials with larger counts than the chaos suite (tests/chaos) can afford in CI.

Repeats, on SQLite (and PostgreSQL with --postgres), the measurements of issue 11:

* a worker SIGKILLed at a random moment 0.15-1.5 s after N runs were created, then restarted;
* three workers with default names on one host sharing M runs.

Counts runs lost, executed twice (marker files: one line per execution) and stuck, and the
time to settle; prints the table and writes benchmarks/results/chaos_trials.json.

    .venv/bin/python benchmarks/chaos_trials.py --trials 9 --runs 30 --shared-runs 300 [--postgres]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "chaos"), str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

from _common import record as record_result  # noqa: E402
from chaos_helpers import CHAOS_ENV, WorkerProc, count, create_runs, deploy, format_table, make_project, settle  # noqa: E402


def _store(tmp: Path, pg: object | None) -> str:
    return pg.fresh_database() if pg is not None else f"sqlite:///{tmp / 'store.db'}"  # type: ignore[attr-defined]


def kill_and_restart(tmp: Path, backend: str, url: str, runs: int, rng: random.Random) -> dict:
    from fleetflow.testing import temporary_store

    with temporary_store(database_url=url) as store:
        project, markers = make_project(tmp / "project"), tmp / "markers"
        deploy(project, "d", "chaos")
        worker = WorkerProc("chaos")
        ids = create_runs("marked/d", runs, markers, seconds=0.2)
        delay = rng.uniform(0.15, 1.5)
        time.sleep(delay)  # a benchmark may sleep: it measures, it asserts nothing
        worker.kill()
        fault_at = time.monotonic()
        survivor = WorkerProc("chaos")
        try:
            finals, _ = settle(store, ids, timeout=180)
        finally:
            survivor.stop()
        keys = [f"r{i}" for i in range(runs)]
        row = count(f"worker SIGKILLed {delay:.2f}s after creating runs", backend, finals, keys, markers,
                    time.monotonic() - fault_at).row()
        return row


def three_default_workers(tmp: Path, backend: str, url: str, runs: int) -> dict:
    from fleetflow.testing import temporary_store

    with temporary_store(database_url=url) as store:
        project, markers = make_project(tmp / "project"), tmp / "markers"
        deploy(project, "d", "chaos")
        ids = create_runs("marked/d", runs, markers, seconds=0.0)
        start = time.monotonic()
        workers = [WorkerProc("chaos") for _ in range(3)]
        try:
            finals, _ = settle(store, ids, timeout=600)
        finally:
            for w in workers:
                w.stop()
        return count("three default-named workers", backend, finals, [f"r{i}" for i in range(runs)], markers,
                     time.monotonic() - start).row()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=9)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--shared-runs", type=int, default=300)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    os.environ.update(CHAOS_ENV)
    rng = random.Random(args.seed)
    pg = None
    if args.postgres:
        from pg_server import PostgresServer

        pg = PostgresServer().start()
    backend = "postgres" if pg else "sqlite"
    rows = []
    try:
        for trial in range(args.trials):
            with tempfile.TemporaryDirectory() as tmp:
                os.environ["FLEETFLOW_HOME"] = str(Path(tmp) / "home")
                rows.append(kill_and_restart(Path(tmp), backend, _store(Path(tmp), pg), args.runs, rng))
                print(rows[-1], flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["FLEETFLOW_HOME"] = str(Path(tmp) / "home")
            rows.append(three_default_workers(Path(tmp), backend, _store(Path(tmp), pg), args.shared_runs))
    finally:
        if pg is not None:
            pg.stop()
    print(format_table(rows))
    totals = {k: sum(r[k] for r in rows) for k in ("runs", "lost", "twice", "stuck")}
    path = record(backend, rows, totals)
    print(f"totals {totals}; wrote {path}")


def record(backend: str, rows: list[dict], totals: dict) -> Path:
    return record_result(f"chaos_trials_{backend}", {"rows": rows, "totals": totals})


if __name__ == "__main__":
    main()
