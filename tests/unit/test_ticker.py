"""The process's ticker (fleetflow/ticker.py): periodic jobs on one shared thread, a cancel that
waits for a run in progress, failures that stop nothing, a forked child without its parent's
jobs -- and a flow run process that starts one background thread where it used to start four."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from fleetflow.ticker import Ticker
from waiting import scaled, wait_until


@pytest.fixture
def ticker():
    own = Ticker()  # its own heap and thread: the process's ticker keeps serving the suite
    yield own
    own.cancel_all()


def test_jobs_repeat_on_one_shared_thread(ticker):
    seen: dict[str, list[threading.Thread]] = {"a": [], "b": []}
    ticker.every(0.01, lambda: seen["a"].append(threading.current_thread()), "a")
    ticker.every(0.02, lambda: seen["b"].append(threading.current_thread()), "b")
    wait_until(lambda: len(seen["a"]) >= 3 and len(seen["b"]) >= 3, "both jobs ran three times")
    threads = set(seen["a"]) | set(seen["b"])
    assert len(threads) == 1
    (thread,) = threads
    assert thread is not threading.current_thread() and thread.name == "fleetflow-ticker" and thread.daemon


def test_a_cancelled_job_never_runs_again(ticker):
    runs, beats = [], []
    job = ticker.every(0.01, lambda: runs.append(1), "cancelled")
    ticker.every(0.01, lambda: beats.append(1), "heartbeat")
    wait_until(lambda: runs, "the job ran")
    job.cancel()
    count = len(runs)
    start = len(beats)
    wait_until(lambda: len(beats) >= start + 5, "the other job ran five more times")
    assert len(runs) == count


def test_cancel_waits_for_the_run_in_progress(ticker):
    started, gate, order = threading.Event(), threading.Event(), []

    def slow() -> None:
        started.set()
        gate.wait(scaled(60))
        order.append("job finished")

    job = ticker.every(0.01, slow, "slow")
    assert started.wait(scaled(60))
    canceller = threading.Thread(target=lambda: (job.cancel(), order.append("cancel returned")))
    canceller.start()
    canceller.join(timeout=0.5)
    assert canceller.is_alive() and order == []  # still waiting for the run in progress
    gate.set()
    canceller.join(timeout=scaled(60))
    assert order == ["job finished", "cancel returned"]


def test_a_failing_job_is_logged_and_stops_nothing(ticker, caplog):
    failures, beats = [], []

    def broken() -> None:
        failures.append(1)
        raise RuntimeError("sample source went away")

    ticker.every(0.01, broken, "broken sampler")
    ticker.every(0.01, lambda: beats.append(1), "heartbeat")
    wait_until(lambda: len(failures) >= 3 and len(beats) >= 3, "both jobs kept running")
    logged = [r for r in caplog.records if "broken sampler" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info  # once, with its traceback: not once per run


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_runs_only_its_own_jobs():
    from fleetflow.ticker import ticker as process_ticker  # the one os.register_at_fork resets

    ran = []
    parents_job = process_ticker.every(0.01, lambda: ran.append(os.getpid()), "parent's job")
    try:
        wait_until(lambda: ran, "the parent's job ran")
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what ran here, then leave without pytest's teardown
            try:
                mine = []
                process_ticker.every(0.01, lambda: mine.append(1), "child's job")
                wait_until(lambda: len(mine) >= 3, "the child's job ran three times")
                os.write(write, json.dumps({"own": len(mine) >= 3, "parents_job_here": os.getpid() in ran}).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            report = json.loads(pipe.read())
        os.waitpid(pid, 0)
        assert report == {"own": True, "parents_job_here": False}
    finally:
        parents_job.cancel()


RUN = textwrap.dedent(
    """
    import json, sys, threading
    from fleetflow import flow, get_client

    @flow
    def quiet():
        return [t.name for t in threading.enumerate()]

    during = quiet()
    after = [t.name for t in threading.enumerate()]
    client = get_client()
    run = client.read_flow_runs(limit=1)[0]
    lines = [r.message for r in client.read_logs(flow_run_id=run.id)]
    print(json.dumps({"during": during, "after": after, "lines": lines}))
    """
)


def test_a_short_flow_run_starts_no_thread_for_its_lease_or_its_last_line(tmp_path):
    """The lease keeper is a ticker job, and the run's last line is stored and printed by the
    engine itself: no log shipper thread is started for it. (The console's thread is, for the
    "Created flow run" line a script's flow prints first; a launched run has no such line.)"""
    script = tmp_path / "quiet.py"
    script.write_text(RUN)
    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                         timeout=scaled(120))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "fleetflow-ticker" in report["during"]
    background = sorted(n for n in report["after"] if n.startswith("fleetflow-"))
    assert background == ["fleetflow-console", "fleetflow-ticker"]
    assert "Finished in state Completed()" in report["lines"]  # stored
    assert "Finished in state Completed()" in out.stderr  # and printed
