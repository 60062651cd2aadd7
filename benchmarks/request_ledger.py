"""What the server spends per mutating request on applying it exactly once.

Each request with an ``X-Request-Id`` runs in one store transaction with its ledger row (see
``src/fleetflow/orchestrator/request_tx.py``); first attempts skip the ledger read, retries
(``X-Request-Retry: 1``) do it. This sends, one after another over one keep-alive connection:

* ``create``: ``POST /api/v1/flow_runs`` (run creation, audited);
* ``state``: ``POST /api/v1/flow_runs/{id}/state`` to RUNNING (a Core-path transition);
* ``batch``: ``POST /api/v1/batch`` of ``BATCH`` items (task-run creations and two state
  changes each: the SQLite fast path, one savepoint per item after the first).

and reports, per request, the server process's CPU time (user + system from /proc, so the
machine's load inflates it much less than wall time) and the client's wall time.

    python benchmarks/request_ledger.py [N] [--postgres] [--mark-all]

``--mark-all`` marks every request as a retry (what every request cost before the marker: one
ledger read first). Run it against an older checkout by putting that checkout's ``src`` first
on ``PYTHONPATH`` (the server process inherits it) to compare, interleaving the runs.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _common import record  # noqa: E402
from _server import start_server  # noqa: E402

POSTGRES = "--postgres" in sys.argv
MARK_ALL = "--mark-all" in sys.argv
_ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
N = int(_ARGS[0]) if _ARGS else 300
BATCH = 99  # items per batch: 33 task runs x (create, RUNNING, COMPLETED)
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _measure(pid: int, n: int, send: Callable[[int], None]) -> dict[str, float]:
    send(0)  # warm: first-use imports and compiled statements
    cpu, wall = _cpu_seconds(pid), time.perf_counter()
    for i in range(1, n + 1):
        send(i)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds(pid) - cpu
    return {"server_cpu_ms_per_request": round(cpu / n * 1000, 3), "client_wall_ms_per_request": round(wall / n * 1000, 3)}


def _post(http: httpx.Client, path: str, body: Any) -> Any:
    headers = {"X-Request-Id": uuid.uuid4().hex, **({"X-Request-Retry": "1"} if MARK_ALL else {})}
    response = http.post(path, json=body, headers=headers)
    response.raise_for_status()
    return response.json() if response.content else None


def _pending() -> dict[str, Any]:
    return {"type": "PENDING", "name": "Pending"}


def run(url: str, key: str, pid: int) -> dict[str, dict[str, float]]:
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    runs: list[str] = []

    def create(_i: int) -> None:
        runs.append(_post(http, "/api/v1/flow_runs", {"flow_name": "ledger-bench"})["id"])

    def state(i: int) -> None:
        _post(http, f"/api/v1/flow_runs/{runs[i]}/state", {"state": {"type": "RUNNING", "name": "Running"}})

    parent = _post(http, "/api/v1/flow_runs", {"flow_name": "ledger-bench-batches"})["id"]

    def batch(i: int) -> None:
        items: list[dict[str, Any]] = []
        for j in range(BATCH // 3):
            task_id = f"t-{i}-{j}"
            items.append({"op": "create_task_run", "body": {"flow_run_id": parent, "task_key": "k", "name": "t",
                                                             "dynamic_key": task_id, "id": task_id, "states": [_pending()]}})  # fmt: skip
            for kind in ("RUNNING", "COMPLETED"):
                items.append({"op": "set_task_run_state", "task_run_id": task_id,
                              "body": {"state": {"type": kind, "name": kind.title()}}})  # fmt: skip
        results = _post(http, "/api/v1/batch", {"items": items})["results"]
        assert all("ok" in r for r in results), results[:3]

    out = {"create": _measure(pid, N, create), "state": _measure(pid, N - 1, state),
           "batch": _measure(pid, max(1, N // 10), batch)}  # fmt: skip
    out["batch"]["server_cpu_ms_per_item"] = round(out["batch"]["server_cpu_ms_per_request"] / BATCH, 4)
    http.close()
    return out


def main() -> None:
    pg = None
    database_url = None
    if POSTGRES:
        from pg_server import PostgresServer

        pg = PostgresServer().start()
        database_url = pg.fresh_database("ledger")
    proc, url, key = start_server(tempfile.mkdtemp(prefix="ff-ledger-"), database_url)
    try:
        results = run(url, key, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        if pg is not None:
            pg.stop()
    store = "PostgreSQL" if POSTGRES else "SQLite"
    print(f"server at load {os.getloadavg()[0]:.1f}, {store}, N={N}{' (every request marked a retry)' if MARK_ALL else ''}")
    for name, figures in results.items():
        print(f"  {name:<7} " + "  ".join(f"{k} {v}" for k, v in figures.items()))
    suffix = ("_postgres" if POSTGRES else "") + ("_mark_all" if MARK_ALL else "")
    path = record(f"request_ledger{suffix}", {"n": N, "batch_items": BATCH, "store": store, "mark_all": MARK_ALL,
                                              "fleetflow": __import__("fleetflow").__file__, **results})  # fmt: skip
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
