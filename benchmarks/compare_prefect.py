"""fleetflow side by side with Prefect 3, the same workloads interleaved on one machine.

    python benchmarks/compare_prefect.py /path/to/prefect3-venv [--repeats=3] [--quick]

Build the Prefect venv once (PyPI): ``python3 -m venv /tmp/prefect3 &&
/tmp/prefect3/bin/pip install 'prefect>=3,<4'``. Each measurement is a fresh process of the
system under test, in its own home folder, with its defaults (fleetflow: the embedded SQLite
store, group commit on; Prefect: its temporary local server on SQLite). Runs alternate
fleetflow / Prefect, so a change in machine load hits both. Workloads:

* ``seq-N``: one flow calling a trivial task N times (N = 10, 100, 1000, 10000): engine
  overhead per task run = (flow time - the same calls as plain functions) / N, after a
  warm-up flow in the same process (Prefect's temporary server is already up by then);
* ``map-1000``: one flow mapping the task over 1000 inputs and collecting the results;
* ``flows-200``: 200 calls of a flow with one task, back to back (seconds per flow);
* ``cold-start``: launching ``python script.py`` to the first task body, on an existing store;
* ``rss-1000``: peak resident memory of the process tree (client and server) running seq-1000.

After each run, the task runs that the system actually recorded for the measured flows are
counted in its database, so a system that drops records cannot look fast for it. Medians and
the ratio Prefect / fleetflow go to ``benchmarks/results/compare_prefect.json``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from _common import record  # noqa: E402

WORKLOAD = textwrap.dedent(
    """
    import json, os, sys, time
    T_LAUNCH = float(os.environ["BENCH_LAUNCHED_AT"])
    from {package} import flow, task

    @task
    def inc(i):
        return i + 1

    @task
    def first():
        print(json.dumps({{"first_task_seconds": time.time() - T_LAUNCH}}), flush=True)

    @flow
    def warm():
        return inc(0)

    @flow
    def seq(n):
        return sum(inc(i) for i in range(n))

    @flow
    def mapped(n):
        return sum(f.result() for f in inc.map(list(range(n))))

    @flow
    def small():
        return inc(1)

    @flow
    def cold():
        first()

    def timed(fn, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        fn(*args)
        return time.perf_counter() - wall, time.process_time() - cpu

    mode, n = sys.argv[1], int(sys.argv[2])
    if mode == "cold":
        cold()
        sys.exit(0)
    warm()
    base, _ = timed(lambda k: sum(i + 1 for i in range(k)), n)
    if mode == "seq":
        wall, cpu = timed(seq, n)
    elif mode == "map":
        wall, cpu = timed(mapped, n)
    else:
        wall, cpu = timed(lambda k: [small() for _ in range(k)], n)
    print(json.dumps({{"wall": wall - base, "cpu": cpu, "n": n}}), flush=True)
    """
)

# How each system's SQLite database counts the task runs of the flows named in ``names``.
COUNT_SQL = {
    "fleetflow": ("fleetflow.db", "SELECT count(*) FROM task_runs t JOIN flow_runs f ON t.flow_run_id = f.id "
                                  "WHERE f.flow_name IN ({names})"),
    "prefect": ("prefect.db", "SELECT count(*) FROM task_run t JOIN flow_run r ON t.flow_run_id = r.id "
                              "JOIN flow f ON r.flow_id = f.id WHERE f.name IN ({names})"),
}


class System:
    """One system under test: its Python, its package and a fresh home per run."""

    def __init__(self, name: str, python: str, package: str, home_env: str):
        self.name, self.python, self.package, self.home_env = name, python, package, home_env
        self.script = Path(tempfile.mkdtemp(prefix=f"cmp-{name}-")) / "workload.py"
        self.script.write_text(WORKLOAD.format(package=package))
        self.failures = 0

    def env(self, home: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETFLOW_", "PREFECT_"))}
        env[self.home_env] = home
        # Prefect's temporary server gets 20 s to come up by default: not always enough on a
        # loaded machine (the measured cold start says how long it really took).
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
        env["BENCH_LAUNCHED_AT"] = str(time.time())
        return env

    def run(self, mode: str, n: int, home: str | None = None, *, sample_rss: bool = False) -> dict[str, Any]:
        """One measurement; a run that fails (e.g. a temporary server that did not come up on
        a loaded machine) is retried twice, and the failures are counted."""
        for attempt in range(3):
            try:
                return self._run_once(mode, n, home, sample_rss=sample_rss)
            except RuntimeError as exc:
                self.failures += 1
                print(f"  {self.name} {mode} {n}: {exc} (attempt {attempt + 1} of 3)", flush=True)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _run_once(self, mode: str, n: int, home: str | None, *, sample_rss: bool) -> dict[str, Any]:
        home = home or tempfile.mkdtemp(prefix=f"cmp-{self.name}-home-")
        env = self.env(home)
        with open(Path(home) / "stderr.log", "w") as err:
            proc = subprocess.Popen([self.python, str(self.script), mode, str(n)], env=env, cwd=home,
                                    stdout=subprocess.PIPE, stderr=err, text=True)
            peak = _peak_tree_rss(proc) if sample_rss else None
            out, _ = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            tail = (Path(home) / "stderr.log").read_text()[-600:]
            raise RuntimeError(f"exited {proc.returncode}: ...{tail}")
        result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
        result["home"] = home
        if peak is not None:
            result["peak_rss_mib"] = peak
        return result

    def recorded(self, home: str, flow_names: list[str]) -> int:
        """Task runs of those flows in the system's database after its process exited."""
        db, sql = COUNT_SQL[self.name]
        path = Path(home) / db
        if not path.exists():
            return 0
        with sqlite3.connect(path) as conn:
            names = ",".join("?" for _ in flow_names)
            return conn.execute(sql.format(names=names), flow_names).fetchone()[0]


def _peak_tree_rss(proc: subprocess.Popen) -> float:
    """Peak of the summed RSS of ``proc`` and its descendants (e.g. Prefect's server), MiB."""
    peak = 0
    while proc.poll() is None:
        peak = max(peak, sum(_rss_kib(pid) for pid in _tree(proc.pid)))
        time.sleep(0.05)
    return peak / 1024


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure(systems: list[System], repeats: int, sizes: list[int]) -> dict[str, Any]:
    """Every workload, fleetflow and Prefect alternating within each repeat."""
    table: dict[str, Any] = {}
    plan = [(f"seq-{n}", "seq", n, ["seq"], n) for n in sizes]
    plan += [("map-1000", "map", 1000, ["mapped"], 1000), ("flows-200", "flows", 200, ["small"], 200)]
    for label, mode, n, flows, expected in plan:
        rows: dict[str, dict[str, list[float]]] = {s.name: {"wall": [], "cpu": [], "recorded": []} for s in systems}
        for _ in range(1 if n >= 10_000 or mode == "flows" else repeats):  # the long ones once
            for system in systems:
                result = system.run(mode, n)
                rows[system.name]["wall"].append(result["wall"])
                rows[system.name]["cpu"].append(result["cpu"])
                rows[system.name]["recorded"].append(system.recorded(result["home"], flows))
                print(f"  {label:10s} {system.name:9s} {result['wall']:8.3f} s  recorded "
                      f"{rows[system.name]['recorded'][-1]}/{expected}", flush=True)
        table[label] = {
            name: {"seconds": _median(r["wall"]), "ms_per_item": _median(r["wall"]) / n * 1000,
                   "cpu_ms_per_item": _median(r["cpu"]) / n * 1000, "recorded": min(r["recorded"]),
                   "expected": expected, "samples": len(r["wall"])}
            for name, r in rows.items()
        }
    table["cold-start"] = _cold_start(systems, repeats)
    table["rss-1000"] = {s.name: {"peak_rss_mib": _median([s.run("seq", 1000, sample_rss=True)["peak_rss_mib"]
                                                           for _ in range(max(1, repeats // 2))])} for s in systems}
    return table


def _cold_start(systems: list[System], repeats: int) -> dict[str, Any]:
    homes = {s.name: tempfile.mkdtemp(prefix=f"cmp-{s.name}-cold-") for s in systems}
    for system in systems:
        system.run("cold", 0, homes[system.name])  # the store exists before we measure
    samples: dict[str, list[float]] = {s.name: [] for s in systems}
    for _ in range(repeats):
        for system in systems:
            samples[system.name].append(system.run("cold", 0, homes[system.name])["first_task_seconds"])
    return {name: {"seconds": _median(values), "samples": len(values)} for name, values in samples.items()}


def ratios(table: dict[str, Any]) -> dict[str, float]:
    """Prefect / fleetflow for each workload's headline figure (> 1: fleetflow is ahead)."""
    out = {}
    for label, row in table.items():
        key = "peak_rss_mib" if label.startswith("rss") else "seconds"
        ff, pf = row["fleetflow"][key], row["prefect"][key]
        out[label] = round(pf / ff, 1) if ff > 0 else float("nan")
    return out


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not args:
        raise SystemExit(__doc__)
    venv = Path(args[0])
    prefect_python = str(venv / "bin" / "python")
    version = subprocess.run([prefect_python, "-c", "import prefect; print(prefect.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    repeats = int(next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--repeats=")), "3"))
    sizes = [10, 100, 1000] if "--quick" in sys.argv else [10, 100, 1000, 10_000]
    systems = [System("fleetflow", sys.executable, "fleetflow", "FLEETFLOW_HOME"),
               System("prefect", prefect_python, "prefect", "PREFECT_HOME")]
    print(f"fleetflow (this checkout) vs Prefect {version}; {repeats} interleaved repeats")
    table = measure(systems, repeats, sizes)
    table_ratios = ratios(table)
    print(f"\n| workload | fleetflow | Prefect {version} | ratio | task runs recorded (ff / Prefect / expected) |")
    print("| --- | --- | --- | --- | --- |")
    for label, row in table.items():
        ff, pf = row["fleetflow"], row["prefect"]
        if label == "rss-1000":
            figures = f"{ff['peak_rss_mib']:.0f} MiB | {pf['peak_rss_mib']:.0f} MiB"
            counts = ""
        elif label == "cold-start":
            figures = f"{ff['seconds']:.2f} s | {pf['seconds']:.2f} s"
            counts = ""
        else:
            figures = f"{ff['ms_per_item']:.3f} ms | {pf['ms_per_item']:.3f} ms"
            counts = f"{ff['recorded']} / {pf['recorded']} / {ff['expected']}"
        print(f"| {label} | {figures} | {table_ratios[label]}x | {counts} |")
    path = record("compare_prefect", {"prefect_version": version, "repeats": repeats, "results": table,
                                      "failed_runs_retried": {s.name: s.failures for s in systems},
                                      "ratio_prefect_over_fleetflow": table_ratios,
                                      "units": "seq/map: ms per task run (engine overhead); flows: ms per flow; "
                                               "cold-start: s to the first task body; rss: MiB of the process tree"})
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
