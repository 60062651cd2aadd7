"""The server's lists and claims with a million flow runs in PostgreSQL.

Seeds N flow runs (default 1,000,000) with ``generate_series`` -- spread over 30 days, five
states, twenty flows, four pools -- plus 2,000 due SCHEDULED runs in pool ``bench``, starts
``fleetflow server start`` on that database, and measures:

* ``GET /api/v1/flow_runs?state_type=COMPLETED&limit=50`` (first page, filtered by state),
* the next page by keyset cursor,
* ``GET /api/v1/flow_runs/count`` (bounded at 10,000),
* ``POST /api/v1/work_pools/bench/claim`` (limit 1) with all those runs present.

    python benchmarks/api_scale.py [N] [--samples 200]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _common import record, summary  # noqa: E402

_ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
N = int(_ARGS[0]) if _ARGS else 1_000_000
SAMPLES = int(sys.argv[sys.argv.index("--samples") + 1]) if "--samples" in sys.argv else 200
SCHEDULED = 2_000

SEED = """
INSERT INTO flow_runs (id, name, flow_name, state_type, state_name, state_timestamp, parameters, tags,
                       work_pool_name, infra_overrides, infrastructure, run_count, created, expected_start_time)
SELECT md5(g::text)::uuid::text, 'run-' || g, 'flow-' || (g % 20),
       (ARRAY['COMPLETED','COMPLETED','COMPLETED','FAILED','CRASHED','CANCELLED'])[1 + g % 6],
       'x', now() - (g || ' seconds')::interval * (2592000.0 / :n),
       '{}'::jsonb, '[]'::jsonb, 'pool-' || (g % 4), '{}'::jsonb, '{}'::jsonb, 1,
       now() - (g || ' seconds')::interval * (2592000.0 / :n), NULL
FROM generate_series(1, :n) AS g
"""
SEED_SCHEDULED = """
INSERT INTO flow_runs (id, name, flow_name, state_type, state_name, state_timestamp, parameters, tags,
                       work_pool_name, infra_overrides, infrastructure, run_count, created, expected_start_time)
SELECT md5('s' || g::text)::uuid::text, 'due-' || g, 'flow-due', 'SCHEDULED', 'Scheduled', now(),
       '{}'::jsonb, '[]'::jsonb, 'bench', '{}'::jsonb, '{}'::jsonb, 0, now(), now() - interval '1 minute'
FROM generate_series(1, :m) AS g
"""


def seed(url: str) -> float:
    import sqlalchemy as sa

    from fleetflow.orchestrator import Orchestrator
    from fleetflow.orchestrator.schemas import WorkPool

    store = Orchestrator.create(url)
    store.create_work_pool(WorkPool(id="", name="bench"))
    start = time.perf_counter()
    with store.engine.begin() as conn:
        conn.execute(sa.text(SEED), {"n": N})
        conn.execute(sa.text(SEED_SCHEDULED), {"m": SCHEDULED})
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE flow_runs"))
    store.dispose()
    return time.perf_counter() - start


def timed(fn, samples: int) -> dict[str, float]:
    fn()  # warm
    values = []
    for _ in range(samples):
        start = time.perf_counter()
        fn()
        values.append(time.perf_counter() - start)
    return summary(values)


def main() -> None:
    from pg_server import PostgresServer

    from _server import local_server

    pg = PostgresServer().start()
    try:
        url = pg.fresh_database("scale")
        seconds = seed(url)
        print(f"seeded {N:,} flow runs + {SCHEDULED:,} due runs in {seconds:.1f} s")
        with local_server(tempfile.mkdtemp(prefix="ff-scale-"), database_url=url) as (api, key):
            import httpx

            http = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=60)
            page = {"state_type": "COMPLETED", "limit": 50}
            first = http.get("/api/v1/flow_runs", params=page).json()
            results = {
                "list_first_page": timed(lambda: http.get("/api/v1/flow_runs", params=page).raise_for_status(), SAMPLES),
                "list_next_page": timed(lambda: http.get("/api/v1/flow_runs", params={
                    **page, "cursor": first["next_cursor"]}).raise_for_status(), SAMPLES),  # fmt: skip
                "count_bounded": timed(lambda: http.get("/api/v1/flow_runs/count", params={
                    "state_type": "FAILED"}).raise_for_status(), SAMPLES // 4),  # fmt: skip
                "claim": timed(lambda: http.post("/api/v1/work_pools/bench/claim", json={
                    "worker_name": "bench-worker", "limit": 1}).raise_for_status(), min(SAMPLES, SCHEDULED - 10)),  # fmt: skip
            }
            http.close()
    finally:
        pg.stop()
    print(f"{N:,} flow runs in PostgreSQL, through a local server ({SAMPLES} samples)")
    for name, s in results.items():
        print(f"  {name:16}: p50 {s['p50']*1000:6.1f} ms  p95 {s['p95']*1000:6.1f} ms   (target p95 < 100 ms)")
    path = record("api_scale", {"flow_runs": N, "due_runs": SCHEDULED, "seed_seconds": seconds,
                                **{f"{k}_seconds": v for k, v in results.items()},
                                "target": {"list_p95_seconds": 0.1, "claim_p95_seconds": 0.1}})  # fmt: skip
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
