"""Area 11 (concurrency-limit): tag limits hold across processes through the store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from fleetflow import flow, task

SCRIPT = textwrap.dedent('''
    import fcntl, os, sys, time
    from fleetflow import flow, task

    COUNTER = sys.argv[1]

    def bump(delta):
        """Count tasks running right now, across processes (file lock), and keep the maximum."""
        with open(COUNTER, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            now, peak = (int(x) for x in (fh.read().split() or ["0", "0"]))
            now += delta
            fh.seek(0); fh.truncate(); fh.write(f"{now} {max(peak, now)}")

    @task(tags=["db"])
    def query(i):
        bump(+1)
        time.sleep(0.3)  # work that would overlap without the limit
        bump(-1)
        return i

    @flow
    def many():
        return [f.result() for f in query.map(range(3))]

    print(many())
''')


def test_limit_of_one_holds_across_two_processes(temp_store, tmp_path):
    temp_store.create_concurrency_limit("db", 1)
    script, counter = tmp_path / "limited.py", tmp_path / "counter"
    script.write_text(SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(script), str(counter)], env=os.environ.copy(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    now, peak = (int(x) for x in counter.read_text().split())
    assert (now, peak) == (0, 1)  # six tagged task runs in two processes, never two at once
    assert temp_store.read_concurrency_limits()[0].active_slots == []
    assert any("Waiting for a concurrency slot" in r.message for r in temp_store.read_logs(limit=10000))


def test_limit_two_and_unlimited_tags_in_process(temp_store):
    import threading

    temp_store.create_concurrency_limit("pair", 2)
    lock, running, peaks = threading.Lock(), [0], []
    gate = threading.Barrier(2, timeout=60)

    @task(tags=["pair"])
    def paired(i):
        with lock:
            running[0] += 1
            peaks.append(running[0])
        if i < 2:
            gate.wait()  # the first two must run together: a limit of 2 allows it
        with lock:
            running[0] -= 1
        return i

    @flow
    def f():
        return [x.result() for x in paired.map(range(4))]

    assert f() == [0, 1, 2, 3]
    assert max(peaks) == 2


def test_concurrency_limit_cli(temp_store):
    from compat_cli import invoke

    created = invoke("concurrency-limit", "create", "small-instance", "10")
    assert created.exit_code == 0 and "tag='small-instance', concurrency_limit=10" in created.stdout
    assert invoke("concurrency-limit", "create", "small-instance", "3").exit_code == 0  # changes it
    assert "3" in invoke("concurrency-limit", "inspect", "small-instance").stdout
    assert "small-instance" in invoke("concurrency-limit", "ls").stdout
    assert invoke("concurrency-limit", "delete", "small-instance").exit_code == 0
    gone = invoke("concurrency-limit", "inspect", "small-instance")
    assert gone.exit_code == 1 and "concurrency-limit create small-instance" in gone.stderr
