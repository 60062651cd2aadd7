"""One command: deploy the three sub-flows, start a worker, run the pipeline, print the tree.

    python examples/ml_pipeline/run.py      (or `make example`)

Uses the embedded default: a SQLite store under FLEETFLOW_HOME (default ~/.fleetflow), a
local worker process and one subprocess per sub-flow with its own memory limit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from rich.console import Console  # noqa: E402

from fleetflow import get_client  # noqa: E402
from fleetflow.deployments import ensure_work_pool  # noqa: E402
from fleetflow.settings import get_settings  # noqa: E402

from deploy import POOL, deploy  # noqa: E402
from flows import ml_pipeline  # noqa: E402


def start_worker() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fleetflow", "worker", "start", "--pool", POOL, "--name", "example-worker"])


def main() -> int:
    console = Console()
    client = get_client()
    ensure_work_pool(client, POOL)
    worker = start_worker()
    deploy()
    console.print(f"[bold]Deployed[/] fetch-data/fetch, preprocess/preprocess, train/train to pool {POOL!r}")
    while client.read_work_pool(POOL).last_polled is None:  # wait for the worker's first poll
        if worker.poll() is not None:
            console.print(f"[red]the worker exited with code {worker.returncode}; see its output above[/]")
            return 1
        time.sleep(0.05)
    try:
        started = time.monotonic()
        result = ml_pipeline(n=2000)
        elapsed = time.monotonic() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    parent = client.read_flow_runs(flow_name="ml-pipeline", limit=1)[0]
    from fleetflow.cli.tree import rows_to_tree, run_tree_rows
    from fleetflow.cli.usage_view import tree_total_text

    rows = run_tree_rows(client, parent.id)  # each child: used vs requested, and its cost estimate
    console.print(rows_to_tree(rows))
    console.print(tree_total_text(rows))
    from fleetflow.usage.advice import recommend_deployment
    from fleetflow.usage.recommend import recommendation_summary

    for name in ("fetch-data/fetch", "preprocess/preprocess", "train/train"):  # what each size should be
        console.print(f"  {name}: {recommendation_summary(recommend_deployment(client, name)[1])}")
    console.print("apply one with: fleetflow deployment recommend train/train --apply")
    console.print(f"[green]pipeline finished in {elapsed:.2f}s[/]: mse={result['mse']:.4f}")
    console.print(f"inspect it again with: fleetflow flow-run inspect {parent.id} --tree")
    api_url = get_settings().api_url  # set when a fleetflow server is running for this store
    if api_url:
        console.print(f"[bold]see it in the web UI:[/] {api_url.rstrip('/')}/runs/{parent.id}", soft_wrap=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("FLEETFLOW_LOGGING_LEVEL", "INFO")
    raise SystemExit(main())
