"""Measuring: the sampler sees a real child process tree's CPU and memory, the ECS task
metadata source reads a real endpoint (tests/ecs_metadata.py), the cgroup v2 ownership rule,
fit warnings, and the texts ("used 1.3 of 4 GiB, 0.4 of 2 vCPU")."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ecs_metadata import TaskMetadataServer
from fleetflow import states as st
from fleetflow.usage import Measured, Platform, RunUsage
from fleetflow.usage import sources
from fleetflow.usage.display import cost_text, money, usage_line
from fleetflow.usage.fit import fit_warnings
from fleetflow.usage.pricing import Cost
from fleetflow.usage.recorder import build_usage, parse_metadata_time, with_warnings
from fleetflow.usage.sampler import Sampler

CHILD = textwrap.dedent(
    """
    import sys, time
    start = time.process_time()
    block = b"\\x01" * (200 * 1024 * 1024)
    while time.process_time() - start < 0.5:
        pass
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()
    """
)


def _child() -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"  # allocated and burnt: now resident and counted
    return proc


def test_sampler_counts_a_child_process_tree():
    sampler = Sampler(interval=0.05, ecs_uri="").start()
    child = _child()
    sampler.sample()  # the child is alive: its resident memory is in the tree
    child.stdin.write(b"\n")
    child.stdin.close()
    child.wait()  # reaped: its CPU is in RUSAGE_CHILDREN
    m = sampler.stop()
    assert m.peak_memory.value >= 200 and "getrusage" in m.peak_memory.source
    assert m.cpu_seconds >= 0.5 and m.samples >= 2 and m.peak_cpu > 0
    assert m.peak_address_space_mib is None or m.peak_address_space_mib > 0


def test_ecs_task_metadata_is_read_from_the_endpoint():
    server = TaskMetadataServer("eu-west-1").start()
    child = _child()
    try:
        server.register("t1", child.pid, cpu="512", memory="1024")
        value, stat = sources.ecs_task_memory(f"{server.url}/t1")
        assert value >= 200 and stat == "usage"
        task = sources.ecs_task_metadata(f"{server.url}/t1")
        assert task["Limits"] == {"CPU": 0.5, "Memory": 1024} and task["AvailabilityZone"] == "eu-west-1a"
        sampler = Sampler(interval=0.05, ecs_uri=f"{server.url}/t1").start()
        sampler.sample()
        m = sampler.stop()
        assert m.peak_memory.source.startswith("ECS task metadata v4 /task/stats") and m.peak_memory.value >= 200
        usage = build_usage(m, {}, task)  # no launch record: sizes from the metadata's Limits
        assert usage.requested_cpu.value == 512 and usage.requested_memory_mib.source == "ECS task metadata Limits.Memory"
        assert usage.platform.region == "eu-west-1" and usage.billed_seconds.source.startswith("ECS task metadata")
        assert sources.ecs_task_memory(f"{server.url}/unknown") is None
    finally:
        child.stdin.close()
        child.wait()
        server.stop()


def test_docker_stats_prefer_max_usage_and_sum_containers():
    stats = {"a": {"memory_stats": {"usage": 10 << 20, "max_usage": 30 << 20}},
             "b": {"memory_stats": {"usage": 5 << 20, "max_usage": 6 << 20}}}
    assert sources.task_memory_from_stats(stats) == (36.0, "max_usage")
    assert sources.task_memory_from_stats({"a": {"memory_stats": {"usage": 1 << 20}}}) == (1.0, "usage")
    assert sources.task_memory_from_stats({}) is None and sources.task_memory_from_stats(None) is None


def test_cgroup_v2_is_used_only_when_it_holds_only_this_run():
    assert sources.unified_cgroup("0::/ecs/task-1\n") == "ecs/task-1"
    assert sources.unified_cgroup("4:memory:/x\n0::/\n") is None  # hybrid host
    me = os.getpid()
    assert sources.holds_only_this_run({me}, me)
    assert sources.holds_only_this_run({me, os.getppid()}, me)  # the container's init / shell
    assert not sources.holds_only_this_run({me, 999_999_999}, me)  # someone else's process


def _usage(peak: float, limit: float, kind: str = "ecs", vm: float | None = None) -> RunUsage:
    return RunUsage(peak_memory_mib=Measured(value=peak, source="t"), wall_seconds=Measured(value=10, source="t"),
                    requested_memory_mib=Measured(value=limit, source="t"), platform=Platform(kind=kind),
                    peak_address_space_mib=Measured(value=vm, source="t") if vm else None,
                    avg_cpu=Measured(value=0.4, source="t"), requested_cpu=Measured(value=2048, source="t"))


def test_fit_warnings_above_90_and_below_25_percent():
    (high,) = fit_warnings(_usage(950, 1024), "f/d")
    assert high.startswith("OOM risk: peak memory 950 MiB is 93% of the 1024 MiB limit") and "f/d" in high
    (low,) = fit_warnings(_usage(200, 4096))
    assert low.startswith("over-sized: peak memory 200 MiB is 5%")
    assert fit_warnings(_usage(2048, 4096)) == []
    # a Process limit caps address space: a high VmPeak is an OOM risk even with a small RSS
    assert fit_warnings(_usage(300, 1024, kind="process", vm=1000))[0].startswith("OOM risk: peak address space 1000 MiB")
    state = with_warnings(st.Completed(), [low])
    assert state.message == low and with_warnings(st.Failed(message="boom"), [low]).message == f"boom; {low}"


def test_display_texts():
    usage = _usage(1331, 4096)
    assert usage_line(usage) == "used 1.3 of 4 GiB, 0.4 of 2 vCPU"
    assert cost_text(Cost(None, None, "n/a")) == "n/a" and cost_text(Cost(0.0, 3, "free")) == "free"
    assert money(0.000412) == "$0.000412" and money(12.5) == "$12.5000" and money(1234.5) == "$1,234.50"


def test_metadata_timestamps_parse():
    assert parse_metadata_time("2020-10-08T20:47:16.053330955Z").microsecond == 53330
    assert parse_metadata_time("not a time") is None
