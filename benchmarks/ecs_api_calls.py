"""AWS control-plane calls for 200 ECS launches: how many, of which kind.

    python benchmarks/ecs_api_calls.py [RUNS] [POLL_SECONDS]

Starts the tests' moto server (``tests/aws_server.py``; tasks stay RUNNING until stopped) and
drives one ``ECSLauncher`` the way the worker does: a tick every 0.1 s that launches up to 10
newly claimed runs and asks ``statuses`` for every watched launch. RUNS (default 200) runs are
spread over 3 deployments (3 ECSTask blocks with different images, all on one cluster); the
"train" deployment also varies cpu/memory per run through overrides. Every AWS request the
launcher sends is counted by operation with a botocore ``before-send`` hook.

Prints a table and writes ``benchmarks/results/ecs_api_calls.json``. Expected: 3
RegisterTaskDefinition, RUNS RunTask, at most 2 EC2 describes, and per watch poll at most
ceil(running / 100) DescribeTasks.

For comparison, prefect-aws 0.3's ``ECSTask.run`` (its code path, not measured here) makes per
launch: RegisterTaskDefinition, DescribeVpcs, DescribeSubnets, RunTask, DescribeTasks polls
per task while waiting for start and for the end (one call per task every 5 s), and
DeregisterTaskDefinition (``auto_deregister_task_definition`` defaulted to True): ~7 calls per
launch before counting the per-task polls.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import sys
import time
import urllib.request
import datetime as dt
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # aws_server: the same helper the tests use

from aws_server import DUMMY_ENV, MotoServer, RequestCounter, boto3_client, credentials_for  # noqa: E402

from fleetflow import states as st  # noqa: E402
from fleetflow.aws import ECSTask  # noqa: E402
from fleetflow.aws.ecs_launcher import ECSLauncher  # noqa: E402
from fleetflow.orchestrator.schemas import FlowRun  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "ecs_api_calls.json"
CLUSTER = "bench"
TICK = 0.1
PER_TICK = 10  # the worker claims up to 10 runs per tick
EC2_OPS = ("DescribeVpcs", "DescribeSubnets")
PREFECT_AWS_03_CALLS_PER_LAUNCH = 7


def deployments(url: str, poll: float) -> dict[str, ECSTask]:
    creds = credentials_for(url)
    common = dict(aws_credentials=creds, cluster=CLUSTER, task_watch_poll_interval=poll)
    return {
        "train": ECSTask(image="acme/train:1", cpu=4096, memory=16384, **common),
        "etl": ECSTask(image="acme/etl:1", cpu=1024, memory=2048, **common),
        "report": ECSTask(image="acme/report:1", launch_type="FARGATE_SPOT", cpu=512, memory=1024, **common),
    }


TRAIN_SIZES = [(4096, 16384), (8192, 32768), (2048, 8192)]


def plan(blocks: dict[str, ECSTask], runs: int) -> list[tuple[FlowRun, ECSTask]]:
    """RUNS flow runs round-robin over the deployments; train runs vary their size."""
    names = list(blocks)
    out = []
    for i in range(runs):
        name = names[i % len(names)]
        block = blocks[name]
        if name == "train":
            cpu, memory = TRAIN_SIZES[(i // 3) % len(TRAIN_SIZES)]
            block = block.model_copy(update={"cpu": cpu, "memory": memory})
        run = FlowRun(id=f"6f1c1e2a-0000-4000-8000-{i:012d}", name=f"run-{i}", flow_name=name, deployment_id=name,
                      work_pool_name="bench", state=st.Pending())
        out.append((run, block))
    return out


def manual_progression(url: str) -> None:
    body = {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000}}
    request = urllib.request.Request(f"{url}/moto-api/state-manager/set-transition", data=json.dumps(body).encode(), method="POST")
    urllib.request.urlopen(request, timeout=10).read()


async def drive(url: str, runs: int, poll: float) -> dict[str, Any]:
    counter = RequestCounter()
    launcher = ECSLauncher(on_client=counter.attach)
    queue = plan(deployments(url, poll), runs)
    watched: dict[str, ECSTask] = {}
    launching: set[asyncio.Task] = set()
    polls: list[dict[str, int]] = []
    launch_ms: list[float] = []
    started = time.perf_counter()

    async def launch(run: FlowRun, block: ECSTask) -> None:
        t0 = time.perf_counter()
        result = await launcher.launch(block, run, env={"FLEETFLOW_FLOW_RUN_ID": run.id}, command=[])
        launch_ms.append((time.perf_counter() - t0) * 1000)
        watched[result.handle] = block

    extra_polls = 0
    while queue or launching or extra_polls < 3:
        for run, block in [queue.pop(0) for _ in range(min(PER_TICK, len(queue)))]:
            task = asyncio.ensure_future(launch(run, block))
            launching.add(task)
            task.add_done_callback(launching.discard)
        before = counter["DescribeTasks"]
        running = len(watched)
        await launcher.statuses(list(watched.items()))
        calls = counter["DescribeTasks"] - before
        if calls:
            polls.append({"running": running, "describe_tasks": calls})
            if not queue and not launching:
                extra_polls += 1
        await asyncio.sleep(TICK)
    elapsed = time.perf_counter() - started
    await launcher.close()
    return {"counts": dict(counter.counts), "polls": polls, "launch_ms": launch_ms, "elapsed_s": elapsed}


def versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ("aiobotocore", "botocore", "moto")}


def machine() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions(),
    }


def summarise(runs: int, poll: float, data: dict[str, Any]) -> dict[str, Any]:
    counts = Counter(data["counts"])
    worst = max(data["polls"], key=lambda p: p["describe_tasks"] - math.ceil(p["running"] / 100))
    launch_ms = sorted(data["launch_ms"])
    return {
        "runs": runs,
        "deployments": 3,
        "task_watch_poll_interval_s": poll,
        "worker_tick_s": TICK,
        "calls_by_operation": dict(sorted(counts.items())),
        "total_calls": sum(counts.values()),
        "calls_per_launch": round(sum(counts.values()) / runs, 2),
        "ec2_describe_calls": sum(counts[op] for op in EC2_OPS),
        "watch_polls": len(data["polls"]),
        "describe_tasks_per_poll_max": max(p["describe_tasks"] for p in data["polls"]),
        "describe_tasks_bound_held": all(p["describe_tasks"] <= math.ceil(p["running"] / 100) for p in data["polls"]),
        "worst_poll": worst,
        "launch_ms_p50": round(launch_ms[len(launch_ms) // 2], 1),
        "launch_ms_p95": round(launch_ms[int(len(launch_ms) * 0.95) - 1], 1),
        "elapsed_s": round(data["elapsed_s"], 2),
        "prefect_aws_0_3_reference": {
            "calls_per_launch_before_polling": PREFECT_AWS_03_CALLS_PER_LAUNCH,
            "register_task_definition": runs,
            "deregister_task_definition": runs,
            "note": "from prefect-aws 0.3 ECSTask.run's code path, not measured here",
        },
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"{result['runs']} runs over 3 deployments, one ECSLauncher, moto server\n")
    print(f"{'operation':<28}{'calls':>8}")
    for op, n in result["calls_by_operation"].items():
        print(f"{op:<28}{n:>8}")
    print(f"{'total':<28}{result['total_calls']:>8}  ({result['calls_per_launch']} per launch)")
    print(f"\nEC2 describe calls: {result['ec2_describe_calls']}")
    print(f"DescribeTasks per poll: max {result['describe_tasks_per_poll_max']} over {result['watch_polls']} polls "
          f"(bound ceil(running/100) held: {result['describe_tasks_bound_held']})")
    print(f"launch latency p50 {result['launch_ms_p50']} ms, p95 {result['launch_ms_p95']} ms; elapsed {result['elapsed_s']} s")
    print(f"prefect-aws 0.3 reference: ~{PREFECT_AWS_03_CALLS_PER_LAUNCH} calls per launch + per-task polls, "
          f"{result['runs']} registrations and {result['runs']} deregistrations")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    poll = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    os.environ.update(DUMMY_ENV)
    with MotoServer() as server:
        manual_progression(server.url)
        boto3_client(server.url, "ecs").create_cluster(clusterName=CLUSTER)
        data = asyncio.run(drive(server.url, runs, poll))
    result = {"machine": machine(), **summarise(runs, poll, data)}
    print_table(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
