"""Process identity (pid + start time), worker names, fault points."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys

import pytest

from fleetflow import faults
from fleetflow.orchestrator.schemas import Worker
from fleetflow.procinfo import HAS_PROC, ProcessId, find_by_environment
from fleetflow.worker.names import default_name, holder_is_live

pytestmark = pytest.mark.skipif(not HAS_PROC, reason="needs /proc (Linux)")
NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                            env={**os.environ, "FLEETFLOW_LAUNCH_TOKEN": "tok-" + os.urandom(4).hex()})
    yield proc
    proc.kill()
    proc.wait()


def test_handle_round_trip_and_liveness(child):
    pid = ProcessId.current(child.pid)
    assert pid.start is not None and ProcessId.parse(str(pid)) == pid
    assert pid.alive()
    child.kill()
    child.wait()
    assert not pid.alive()


def test_a_reused_pid_is_never_signalled(child):
    """A handle whose start time does not match the live process is not that process."""
    real = ProcessId.current(child.pid)
    impostor = ProcessId(real.host, real.pid, str(int(real.start) - 1))
    assert not impostor.alive()
    assert impostor.signal(signal.SIGKILL) is False
    assert child.poll() is None  # still running: nothing was sent
    assert ProcessId(real.host, real.pid, None).alive() is False  # no start time: cannot verify


def test_another_host_is_not_alive_here(child):
    assert not ProcessId("some-other-host", child.pid, ProcessId.current(child.pid).start).alive()


def test_find_by_environment(child):
    token = dict(line.split("=", 1) for line in open(f"/proc/{child.pid}/environ").read().split("\0") if "=" in line)
    found = find_by_environment("FLEETFLOW_LAUNCH_TOKEN", token["FLEETFLOW_LAUNCH_TOKEN"])
    assert found is not None and found.pid == child.pid
    assert find_by_environment("FLEETFLOW_LAUNCH_TOKEN", "no-such-token") is None


def test_default_worker_names_are_unique_per_process():
    names = {default_name("pool") for _ in range(50)}
    assert len(names) == 50 and all(n.endswith(tuple("0123456789abcdef")) and "-pool-" in n for n in names)


@pytest.mark.parametrize("age,instance,local_alive,live", [
    (1, "i", None, True),  # fresh heartbeat, another host: held
    (1, "i", True, True),
    (1, "i", False, False),  # fresh but its process on this host is dead
    (100, "i", None, False),  # stale heartbeat, another host
    (100, "i", True, True),  # late heartbeat, but its process is alive on this host (a loaded host)
    (400, "i", True, False),  # ... only for a while: a reused pid cannot hold the name for ever
    (1, None, None, False),  # released at a clean shutdown
])
def test_holder_is_live(age, instance, local_alive, live):
    holder = Worker(name="n", work_pool_name="p", last_heartbeat=NOW - dt.timedelta(seconds=age), hostname="h",
                    pid=1, instance_id=instance)
    assert holder_is_live(holder, stale_after=30, now=NOW, local_alive=local_alive) is live


def test_fault_points_parse_and_refuse_unknown_names():
    assert faults.parse("worker.after_start=kill, runner.after_claim=pause:0.5") == {
        "worker.after_start": "kill", "runner.after_claim": "pause:0.5"}
    with pytest.raises(ValueError, match="unknown fault point"):
        faults.parse("worker.nowhere=kill")


def test_fault_point_kills_only_where_named(tmp_path):
    marker = tmp_path / "reached"
    code = "from fleetflow.faults import fault; fault('worker.after_claim'); print('passed'); fault('worker.after_start'); print('never')"
    env = {**os.environ, "FLEETFLOW_FAULT_POINTS": "worker.after_start=kill", "FLEETFLOW_FAULT_MARKER": str(marker)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == -signal.SIGKILL and out.stdout.split() == ["passed"]
    assert marker.read_text().split()[0] == "worker.after_start"


def test_cpu_plan_is_pure():
    from fleetflow.infrastructure.cpu import cpu_max, cpus_for

    assert cpus_for(512, [0, 1, 2, 3]) == [0]
    assert cpus_for(2048, [3, 1, 2]) == [1, 2]
    assert cpus_for(99999, [0, 1]) == [0, 1]
    assert cpu_max(512) == "50000 100000" and cpu_max(2048) == "200000 100000"


def test_cpu_is_enforced_on_a_real_process(child):
    from fleetflow.infrastructure.cpu import enforce_cpu

    how = enforce_cpu(child.pid, 1024)
    if how.startswith("cpu affinity"):
        assert len(os.sched_getaffinity(child.pid)) == 1
    else:
        assert how.startswith("cgroup cpu.max")
    assert enforce_cpu(child.pid, None) == "none (cpu not set)"


def test_memory_too_small_for_the_runtime_is_refused_with_the_minimum():
    from fleetflow.aws import ECSTask
    from fleetflow.exceptions import BlockValidationError, ECSConfigError
    from fleetflow.infrastructure import Process

    with pytest.raises(BlockValidationError, match="at least 128 MiB"):
        Process(memory=100)
    assert Process(memory=128).memory == 128
    with pytest.raises(ECSConfigError, match="at least 128 MiB"):
        ECSTask(launch_type="EC2", cpu=256, memory=64)
