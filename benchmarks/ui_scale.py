"""The web UI's pages with a million flow runs and five million task runs in PostgreSQL.

Seeds (``generate_series``, spread over 30 days): N flow runs (default 1,000,000) as trees --
every fifth run a parent, the four after it its children (from ten deployments, with ECS
sizes) -- and 5 task runs per flow run (5,000,000), plus one parent with 1,000 task runs, four
children, a state history and 2,000 log lines. Then serves the UI (``fleetflow server``'s app
under uvicorn on 127.0.0.1) and measures the server's time for:

* the Runs page (default window), the Runs page filtered by state, and its next keyset page,
* the flow-run page of the run with 1,000 task runs,
* the Deployments page (last 10 runs of each deployment),

Target: p95 < 150 ms each. Run: ``python benchmarks/ui_scale.py [N] [--samples 100]``.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _common import record, summary  # noqa: E402

_ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
N = int(_ARGS[0]) if _ARGS else 1_000_000
SAMPLES = int(sys.argv[sys.argv.index("--samples") + 1]) if "--samples" in sys.argv else 100
TASKS_PER_RUN = 5
TARGET_P95 = 0.150
BIG = "00000000-0000-4000-8000-000000000001"  # the run with 1,000 task runs

DEPLOYMENTS = """
INSERT INTO deployments (id, name, flow_name, entrypoint, infrastructure, infra_overrides, parameters,
                         parameter_schema, work_pool_name, tags, created, updated, infra_retries, infra_retry_delay_seconds)
SELECT md5('dep' || d)::uuid::text, 'd' || d, 'child-' || d, 'flows.py:child', '{}'::jsonb,
       jsonb_build_object('cpu', 1024 * (1 + d % 4), 'memory', 2048 * (1 + d % 4)), '{}'::jsonb, '{}'::jsonb,
       'pool-' || (d % 4), '[]'::jsonb, now(), now(), 0, 0
FROM generate_series(0, 9) AS d
"""
# Every fifth run is a parent (no deployment); the four after it are its children.
FLOW_RUNS = """
INSERT INTO flow_runs (id, name, flow_name, state_type, state_name, state_timestamp, parameters, tags,
                       parent_flow_run_id, deployment_id, work_pool_name, infra_overrides, infrastructure,
                       infrastructure_pid, run_count, created, start_time, end_time)
SELECT md5(g::text)::uuid::text, 'run-' || g,
       CASE WHEN g % 5 = 0 THEN 'pipeline' ELSE 'child-' || (g % 10) END,
       (ARRAY['COMPLETED','COMPLETED','COMPLETED','FAILED','CRASHED','CANCELLED','RUNNING'])[1 + g % 7], 'x',
       now() - (g || ' seconds')::interval * (2592000.0 / :n), '{}'::jsonb,
       CASE WHEN g % 3 = 0 THEN '["nightly"]'::jsonb ELSE '[]'::jsonb END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE md5((g - g % 5)::text)::uuid::text END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE md5('dep' || (g % 10))::uuid::text END,
       'pool-' || (g % 4), '{}'::jsonb,
       CASE WHEN g % 5 = 0 THEN '{"kind": "in-process"}'::jsonb
            ELSE jsonb_build_object('kind', 'ecs-task', 'cpu', 1024, 'memory', 4096, 'cluster', 'ml') END,
       'arn\\:aws\\:ecs\\:eu-west-1\\:1\\:task/ml/' || g, 1,
       now() - (g || ' seconds')::interval * (2592000.0 / :n),
       now() - (g || ' seconds')::interval * (2592000.0 / :n),
       now() - (g || ' seconds')::interval * (2592000.0 / :n) + interval '90 seconds'
FROM generate_series(5, :n + 4) AS g
"""
TASK_RUNS = """
INSERT INTO task_runs (id, flow_run_id, task_key, name, dynamic_key, state_type, state_name, state_timestamp, run_count,
                       created, start_time, end_time)
SELECT md5('t' || g)::uuid::text, md5((5 + g % :n)::text)::uuid::text, 'flows.step', 'step-' || (g / :n), (g / :n)::text,
       'COMPLETED', 'Completed', now(), 1, now(), now() - interval '1 hour', now() - interval '59 minutes'
FROM generate_series(0, :m - 1) AS g
"""
BIG_RUN = """
INSERT INTO flow_runs (id, name, flow_name, state_type, state_name, state_timestamp, parameters, tags, infra_overrides,
                       infrastructure, infrastructure_pid, run_count, created, start_time)
VALUES (:big, 'big-parent', 'pipeline', 'RUNNING', 'Running', now(), '{"n": 1000}'::jsonb, '[]'::jsonb, '{}'::jsonb,
        '{"kind": "in-process"}'::jsonb, 'process\\:bench\\:1\\:1', 1, now() - interval '10 minutes', now() - interval '10 minutes');
INSERT INTO flow_runs (id, name, flow_name, state_type, state_name, state_timestamp, parameters, tags, parent_flow_run_id,
                       deployment_id, infra_overrides, infrastructure, run_count, created, start_time, end_time)
SELECT md5('bigchild' || c)::uuid::text, 'big-child-' || c, 'child-' || c, 'COMPLETED', 'Completed', now(), '{}'::jsonb,
       '[]'::jsonb, :big, md5('dep' || c)::uuid::text, '{}'::jsonb,
       jsonb_build_object('kind', 'ecs-task', 'cpu', 1024 * c, 'memory', 2048 * c), 1,
       now() - interval '9 minutes', now() - interval '9 minutes', now() - interval '2 minutes'
FROM generate_series(1, 4) AS c;
INSERT INTO task_runs (id, flow_run_id, task_key, name, dynamic_key, state_type, state_name, state_timestamp, run_count,
                       created, start_time, end_time)
SELECT md5('bigtask' || g)::uuid::text, :big, 'flows.step', 'step', g::text,
       (ARRAY['COMPLETED','COMPLETED','FAILED','RUNNING'])[1 + g % 4], 'x', now(), 1, now(),
       now() - interval '10 minutes' + (g || ' seconds')::interval * 0.5,
       CASE WHEN g % 4 = 3 THEN NULL ELSE now() - interval '10 minutes' + (g || ' seconds')::interval * 0.5 + interval '20 seconds' END
FROM generate_series(1, 1000) AS g;
INSERT INTO states (flow_run_id, type, name, timestamp)
VALUES (:big, 'PENDING', 'Pending', now() - interval '10 minutes'), (:big, 'RUNNING', 'Running', now() - interval '10 minutes');
INSERT INTO logs (flow_run_id, level, name, message, timestamp)
SELECT :big, (ARRAY[20, 20, 30, 40])[1 + g % 4], 'flow', 'step ' || g || ' processed a batch of rows', now()
FROM generate_series(1, 2000) AS g;
"""


def seed(url: str) -> dict[str, float]:
    import sqlalchemy as sa

    from fleetflow.orchestrator import Orchestrator
    from fleetflow.orchestrator.schemas import WorkPool

    store = Orchestrator.create(url)
    for pool in range(4):
        store.create_work_pool(WorkPool(id="", name=f"pool-{pool}"))
    took = {}
    for name, sql, values in (("deployments", DEPLOYMENTS, {}), ("flow_runs", FLOW_RUNS, {"n": N}),
                              ("task_runs", TASK_RUNS, {"n": N, "m": N * TASKS_PER_RUN}), ("big_run", BIG_RUN, {"big": BIG})):  # fmt: skip
        start = time.perf_counter()
        with store.engine.begin() as conn:
            for statement in filter(str.strip, sql.split(";\n")):
                conn.execute(sa.text(statement), values)
        took[name] = round(time.perf_counter() - start, 1)
        print(f"seeded {name} in {took[name]} s", flush=True)
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    store.dispose()
    return took


def timed(client, path: str, samples: int) -> dict[str, float]:
    first = client.get(path)
    assert first.status_code == 200, (path, first.status_code, first.text[:500])
    values = []
    for _ in range(samples):
        start = time.perf_counter()
        response = client.get(path)
        values.append(time.perf_counter() - start)
        assert response.status_code == 200
    return {**{k: round(v * 1000, 1) for k, v in summary(values).items()}, "bytes": len(first.content)}


def main() -> None:
    import httpx
    from pg_server import PostgresServer

    from fleetflow.orchestrator import Orchestrator
    from fleetflow.server.serve import start_in_thread

    pg = PostgresServer(dbname="ui_scale").start()
    try:
        seeded = seed(pg.url)
        store = Orchestrator.create(pg.url)
        server = start_in_thread(store, auth=False, ui=True)
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                first = client.get("/runs?state=COMPLETED").text
                cursor = re.search(r'href="/runs\?([^"]*cursor=[^"]+)">Older', first).group(1).replace("&amp;", "&")
                pages = {
                    "runs_page": "/runs",
                    "runs_page_state_filter": "/runs?state=COMPLETED",
                    "runs_page_tag_filter": "/runs?tag=nightly&window=24h",
                    "runs_page_next_keyset_page": f"/runs?{cursor}",
                    "run_page_1000_task_runs": f"/runs/{BIG}",
                    "deployments_page": "/deployments",
                }
                results = {}
                print(f"load average before measuring: {os.getloadavg()}", flush=True)
                for name, path in pages.items():
                    results[name] = timed(client, path, SAMPLES)
                    print(f"{name:32s} p50 {results[name]['p50']:7.1f} ms  p95 {results[name]['p95']:7.1f} ms  "
                          f"({results[name]['bytes']:,} bytes)", flush=True)  # fmt: skip
        finally:
            server.stop()
            store.dispose()
    finally:
        pg.stop()
    worst = max(r["p95"] for r in results.values())
    print(f"worst p95 {worst:.1f} ms (target < {TARGET_P95 * 1000:.0f} ms): {'OK' if worst < TARGET_P95 * 1000 else 'OVER'}")
    path = record("ui_scale", {"flow_runs": N, "task_runs": N * TASKS_PER_RUN + 1000, "samples": SAMPLES,
                               "seed_seconds": seeded, "target_p95_ms": TARGET_P95 * 1000, "pages_ms": results,
                               "load_average_at_end": os.getloadavg(), "worst_p95_ms": worst,
                               "note": "server time as seen by a client on 127.0.0.1 (one request at a time), "
                                       "server in a thread of the benchmark process; the machine (2 cores) is "
                                       "shared, see load_average_at_end"})  # fmt: skip
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
