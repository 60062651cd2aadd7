"""Helpers shared by the benchmark scripts: machine info and writing results."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        # The machine is shared: the load while measuring says how much to trust the figures.
        "load_average_1m": round(os.getloadavg()[0], 2),
        # And how fast it was just then: the same pure-Python work, timed. The host's speed moves
        # by up to ~1.5x within a day here; compare figures recorded at different times with it.
        "reference_loop_ms": reference_loop_ms(),
    }


def reference_loop_ms(repeats: int = 5) -> float:
    """The best of ``repeats`` timings of a fixed pure-Python workload (dicts, strings, calls:
    what the engine does), in ms: ~30 ms on an idle core of the 2-CPU machine here."""
    def work() -> int:
        table: dict[str, int] = {}
        for i in range(200_000):
            key = f"run-{i % 977}"
            table[key] = table.get(key, 0) + len(key)
        return sum(table.values())

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 2)


def record(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    return path


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(values), "p95": percentile(values, 95), "min": min(values), "max": max(values)}
