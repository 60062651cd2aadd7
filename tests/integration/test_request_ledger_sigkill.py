"""Exactly once across a server SIGKILL at the worst points of a request.

A real uvicorn server process serves a real SQLite file or PostgreSQL database. The test owns
the listening socket and hands it to each server process it starts (so the client's URL never
changes and no port is picked and let go). The first server is armed with a fault point
(``src/fleetflow/faults.py``) and SIGKILLs itself at it, on the first mutating request with a
request id:

* ``server.before_commit`` -- the request's writes and its ledger row are in its transaction,
  not committed: the store must hold *nothing* of the request afterwards;
* ``server.after_commit`` -- committed, the response not sent: the store must hold *all* of it.

The client (the real :class:`~fleetflow.client.http.HTTPClient`) sees the connection drop
and retries with the same request id; its retry waits in the socket's backlog until a second,
unarmed server process is started on the same socket. Then we count what the store holds:
each request applied exactly once (one run; one history per state change; one log line each).
Each case adds a row to the chaos table (tests/chaos_table.py).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

import chaos_table
from waiting import scaled, wait_until

from fleetflow import states as st
from fleetflow.client.http import HTTPClient
from fleetflow.orchestrator import Orchestrator
from fleetflow.orchestrator import tables as t
from fleetflow.orchestrator.schemas import LogRecord
from fleetflow.server.serve import bind

SERVER = """
import socket, sys
from fleetflow.orchestrator import Orchestrator
from fleetflow.server.app import create_app
from fleetflow.server.serve import uvicorn_server

sock = socket.socket(fileno=int(sys.argv[1]))
uvicorn_server(create_app(Orchestrator.create(sys.argv[2]))).run(sockets=[sock])
"""
TASKS = 5  # task runs in the batch scenario


class ServerProcess:
    """A uvicorn server process on the test's listening socket, optionally armed to die."""

    def __init__(self, tmp_path: Path, sock: Any, url: str, fault: str | None = None):
        env = {**os.environ}
        env.pop("FLEETFLOW_FAULT_POINTS", None)
        self.marker = tmp_path / f"marker-{time.monotonic_ns()}"
        if fault:
            env.update(FLEETFLOW_FAULT_POINTS=f"{fault}=kill", FLEETFLOW_FAULT_MARKER=str(self.marker))
        self.log = open(tmp_path / f"server-{time.monotonic_ns()}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(sock.fileno()), url], env=env,
                                     pass_fds=[sock.fileno()], stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip

    def reached(self, point: str) -> bool:
        return self.marker.exists() and point in self.marker.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=scaled(60))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.log.close()


class InThread:
    """``fn()`` on a thread (the client blocks, retrying, while the test restarts the server)."""

    def __init__(self, fn: Callable[[], Any]):
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised by join()
            self.error = exc

    def join(self) -> Any:
        self.thread.join(timeout=scaled(240))
        assert not self.thread.is_alive(), "the client call did not return"
        if self.error is not None:
            raise self.error
        return self.result


# ---- the requests, each with what "applied" means -----------------------------------------
def _create_run(client: HTTPClient, _run_id: str) -> Any:
    return client.create_flow_run("sigkilled", id="run-once")


def _count_create_run(store: Orchestrator, _run_id: str) -> int:
    return len(store.read_flow_runs(flow_name="sigkilled"))


def _change_state(client: HTTPClient, run_id: str) -> Any:
    return client.set_flow_run_state(run_id, st.Running())


def _count_change_state(store: Orchestrator, run_id: str) -> int:
    return [s.type for s in store.read_flow_run_states(run_id)].count(st.StateType.RUNNING)


def _batch(client: HTTPClient, run_id: str) -> Any:
    for i in range(TASKS):
        task_run = client.create_task_run(run_id, "step", "step", dynamic_key=str(i), id=f"task-{i}")
        client.set_task_run_state(task_run.id, st.Running())
        client.set_task_run_state(task_run.id, st.Completed())
    now = dt.datetime.now(dt.timezone.utc)
    client.write_logs([LogRecord(flow_run_id=run_id, message=f"line {i}", timestamp=now) for i in range(TASKS)])
    client.flush()
    return client.deferred_rejections()


def _count_batch(store: Orchestrator, run_id: str) -> int:
    """0 when none of the batched writes is there; 2 when any is there twice (a repeated state
    in a task run's history, a log line twice); else 1. The client's sender may split the writes
    into several batches (it takes what is queued when it wakes): the killed one is the first."""
    histories = [[s.type.value for s in store.read_task_run_states(tr.id)] for tr in store.read_task_runs(run_id)]
    lines = [r.message for r in store.read_logs(flow_run_id=run_id)]
    if not histories and not lines:
        return 0
    full = ["PENDING", "RUNNING", "COMPLETED"]
    prefixes = all(h == full[: len(h)] for h in histories)
    return 1 if prefixes and len(lines) == len(set(lines)) else 2


def _batch_complete(store: Orchestrator, run_id: str) -> bool:
    histories = [[s.type.value for s in store.read_task_run_states(tr.id)] for tr in store.read_task_runs(run_id)]
    lines = sorted(r.message for r in store.read_logs(flow_run_id=run_id))
    return histories == [["PENDING", "RUNNING", "COMPLETED"]] * TASKS and lines == [f"line {i}" for i in range(TASKS)]


REQUESTS = {
    "run creation": (_create_run, _count_create_run),
    "state change": (_change_state, _count_change_state),  # a flow run's, on the Core path
    "batch": (_batch, _count_batch),  # task runs, their states and log lines (the SQLite fast path)
}


def _ledger_rows(store: Orchestrator) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t.request_ledger)).scalar_one()


@pytest.mark.parametrize("point", ["server.before_commit", "server.after_commit"])
@pytest.mark.parametrize("request_kind", list(REQUESTS))
def test_a_request_is_applied_once_across_a_server_sigkill(store_url, tmp_path, point, request_kind):
    send, applied = REQUESTS[request_kind]
    store = Orchestrator.create(store_url)
    _key, secret = store.create_api_key("sigkill-test", "admin")
    run_id = store.create_flow_run("target").id
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    first = ServerProcess(tmp_path, sock, store_url, fault=point)
    second = None
    client = HTTPClient(url, api_key=secret, timeout=scaled(120), retry_seconds=scaled(240), outage_seconds=scaled(240))
    try:
        call = InThread(lambda: send(client, run_id))
        wait_until(lambda: first.reached(point) or first.proc.poll() is not None, f"the server at {point}",
                   timeout=120, observe=lambda: (first.proc.poll(), first.marker.exists()))  # fmt: skip
        assert first.proc.wait(timeout=scaled(60)) == -signal.SIGKILL, (tmp_path / "server.log")
        killed_at = time.monotonic()
        # What the dead server left: nothing of the request before its COMMIT, all of it after.
        left = applied(store, run_id)
        assert left == (0 if point == "server.before_commit" else 1), f"{request_kind}: {left} left at {point}"
        assert _ledger_rows(store) == (0 if point == "server.before_commit" else 1)

        second = ServerProcess(tmp_path, sock, store_url)
        outcome = call.join()
        settle = time.monotonic() - killed_at
        times = applied(store, run_id)
        chaos_table.record({"scenario": f"server SIGKILL {point.split('.')[1].replace('_', ' ')}: {request_kind}",
                            "backend": "sqlite" if store_url.startswith("sqlite") else "postgres", "runs": 1,
                            "lost": int(times == 0), "twice": int(times > 1), "stuck": 0,
                            "settle_seconds": round(settle, 2), "detail": f"applied {times} time(s)"})  # fmt: skip
        assert times == 1, f"{request_kind} applied {times} times across a SIGKILL at {point}"
        if request_kind == "run creation":
            assert outcome.id == "run-once"
        if request_kind == "batch":
            assert outcome == []  # no item was refused (a re-applied creation would be)
            assert _batch_complete(store, run_id)
    finally:
        client.close()
        for server in (first, second):
            if server is not None:
                server.stop()
        sock.close()
        store.dispose()
