"""The usage sampler's own cost: CPU time of one sample (a /proc scan of the process tree and
getrusage), and what that is per hour at the default 5 s interval. Prints the numbers and
writes benchmarks/results/usage_overhead.json.

    .venv/bin/python benchmarks/usage_overhead.py
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from _common import record, summary  # noqa: E402

from fleetflow.usage.sampler import Sampler  # noqa: E402

SAMPLES = 200


def main() -> None:
    sampler = Sampler(interval=3600, ecs_uri="")  # no thread ticks: we call sample() ourselves
    sampler.start()
    costs = []
    for _ in range(SAMPLES):
        before = time.process_time()
        sampler.sample()
        costs.append((time.process_time() - before) * 1000)
    sampler.stop()
    processes = len(os.listdir("/proc")) if os.path.isdir("/proc") else 0
    stats = summary(costs)
    per_hour = stats["p50"] / 1000 * 3600 / 5
    print(f"one sample: p50 {stats['p50']:.2f} ms CPU, p95 {stats['p95']:.2f} ms ({processes} /proc entries)")
    print(f"at the default 5 s interval: {per_hour:.2f} CPU seconds per hour of run ({per_hour / 36:.3f}% of one vCPU)")
    path = record("usage_overhead", {"sample_cpu_ms": stats, "proc_entries": processes,
                                     "cpu_seconds_per_hour_at_5s": per_hour, "samples": SAMPLES})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
