"""The whole ECS round trip on one machine: parent flow -> three ECS tasks -> S3 code -> results.

A main flow calls ``run_deployment`` three times. Each deployment has its own cpu/memory
``infra_overrides``; a worker on an ``ecs`` pool launches each child as an ECS task on moto's
server; the ECS emulator (``tests/ecs_emulator.py``) runs the task's container command as a
local process with the task's environment; the runner inside it fetches the deployment's
bundle from S3 on moto, runs the flow and reports states, logs and the result to the store
(SQLite file or PostgreSQL, whose URL reaches the container through the RunTask overrides),
and the parent receives the three results. Nothing in moto or fleetflow is patched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from aws_server import boto3_client, create_bucket, credentials_for
from ecs_emulator import ESSENTIAL_EXITED, ECSEmulator
from ecs_harness import WorkerThread, resolved_store_url, show_containers_on_failure
from waiting import wait_until
from fleetflow import flow
from fleetflow.aws.ecs import ECSTask
from fleetflow.aws.s3 import S3
from fleetflow.bundles import bundle_key
from fleetflow.client.http import HTTPClient
from fleetflow.cancellation import cancel_flow_run
from fleetflow.deployments import Deployment, run_deployment
from fleetflow.orchestrator import schemas
from fleetflow.runner import load_flow_from_entrypoint
from fleetflow.states import StateType
from fleetflow.usage import RunUsage
from fleetflow.usage.pricing import billed_seconds, fargate_rate, load_prices, task_cost
from fleetflow.usage.rollup import run_cost

pytestmark = [pytest.mark.aws, pytest.mark.timeout(90)]

PROJECT = Path(__file__).parent / "project"
POOL = "ecs-e2e"
CLUSTER = "fleetflow-e2e"
BUCKET = "fleetflow-e2e-code"
# deployment -> (flow function in project/flows.py, infra_overrides)
SIZES = {
    "e2e-extract/small": ("extract", {"cpu": 512, "memory": 1024}),
    "e2e-transform/medium": ("transform", {"cpu": 1024, "memory": 2048}),
    "e2e-train/large": ("train", {"cpu": 2048, "memory": 4096}),
}
CHILD_TIMEOUT = 40.0


# ---- AWS and fleetflow setup ---------------------------------------------------------------
def _network(url: str) -> tuple[str, str, str]:
    """A VPC with DNS hostnames, one subnet and one security group (awsvpc tasks need them)."""
    ec2 = boto3_client(url, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="fleetflow-e2e", Description="e2e flows", VpcId=vpc)["GroupId"]
    return vpc, subnet, group


def _aws_and_blocks(url: str, client: Any) -> S3:
    """Cluster, bucket, network; saved AwsCredentials, S3 and ECSTask blocks; the ecs pool."""
    vpc, subnet, group = _network(url)
    boto3_client(url, "ecs").create_cluster(clusterName=CLUSTER)
    create_bucket(url, BUCKET)
    credentials = credentials_for(url)  # endpoint_url -> moto, region us-east-1, keys from the environment
    credentials.save("moto", client=client)
    storage = S3(bucket_path=f"{BUCKET}/code", credentials=credentials)
    storage.save("code", client=client)
    ECSTask(
        cluster=CLUSTER, image="fleetflow-test", vpc_id=vpc, subnets=[subnet], security_groups=[group],
        aws_credentials=credentials, command=None, task_watch_poll_interval=0.2, task_start_timeout_seconds=30,
        # Relative: resolved in each container's own working folder, so every child downloads
        # its bundle from S3 itself, as separate containers would (nothing shared on disk).
        env={"FLEETFLOW_BUNDLE_CACHE_DIR": "bundle-cache"},
    ).save("e2e", client=client)
    client.create_work_pool(schemas.WorkPool(id="", name=POOL, type="ecs", infrastructure_block="ecs-task/e2e"))
    return storage


def _deploy(storage: S3, deployments: dict[str, tuple[str, dict]] = SIZES) -> None:
    for full_name, (function, overrides) in deployments.items():
        child_flow = load_flow_from_entrypoint(f"flows.py:{function}", PROJECT)
        Deployment.build_from_flow(
            child_flow, full_name.split("/")[1], path=str(PROJECT), work_pool_name=POOL,
            infra_overrides=overrides, storage=storage,
        ).apply()


@pytest.fixture
def strict_emulator(aws_env: Any) -> Iterator[ECSEmulator]:
    """The emulator without ``AWS_ENDPOINT_URL`` in the containers: a child reaches S3 on moto
    only because its storage block's credentials say ``endpoint_url``, as the design intends."""
    with ECSEmulator(aws_env.url, "us-east-1", poll_interval=0.05, endpoint_env=False) as emulator:
        yield emulator


@pytest.fixture
def ecs_worker(temp_store: Any, strict_emulator: ECSEmulator) -> Iterator[WorkerThread]:
    worker = WorkerThread(POOL, "e2e-worker")
    yield worker
    worker.stop()


# ---- the test ---------------------------------------------------------------------------
@flow
def ml_main(n: int = 5) -> dict:
    """The parent: three sub-flows, three ECS tasks, results passed from one to the next."""
    extracted = run_deployment("e2e-extract/small", parameters={"n": n}, timeout=CHILD_TIMEOUT).result()
    transformed = run_deployment(
        "e2e-transform/medium", parameters={"rows": extracted["rows"]}, timeout=CHILD_TIMEOUT
    ).result()
    trained = run_deployment("e2e-train/large", parameters={"rows": transformed["rows"]}, timeout=CHILD_TIMEOUT).result()
    return {"extract": extracted, "transform": transformed, "train": trained}


def test_parent_runs_three_ecs_children_from_s3_code_and_gets_their_results(
    temp_store, aws_env, strict_emulator, ecs_worker
):
    emulator = strict_emulator
    started = time.monotonic()
    storage = _aws_and_blocks(aws_env.url, temp_store)
    _deploy(storage)
    ecs_worker.start()
    setup_done = time.monotonic()

    with show_containers_on_failure(emulator):
        result = ml_main(5)
        parent_done = time.monotonic()
        emulator.raise_errors()
        assert ecs_worker.error is None

        # The parent got every child's result, computed in the child's own container.
        assert result["extract"]["rows"] == [1, 2, 3, 4, 5]
        assert result["transform"]["rows"] == [1, 4, 9, 16, 25]
        assert result["train"]["model"] == {"total": 55, "count": 5}
        (parent,) = temp_store.read_flow_runs(flow_name=ml_main.name)
        assert parent.state.type is StateType.COMPLETED
        children = temp_store.read_flow_runs(parent_flow_run_id=parent.id)
        assert len(children) == 3
        task_runs = {t.id: t for t in temp_store.read_task_runs(parent.id)}
        launches = {launch["command"][-1]: launch for launch in emulator.launched}
        assert len(emulator.launched) == 3 and len(launches) == 3

        by_flow = {c.flow_name: c for c in children}
        for full_name, (function, overrides) in SIZES.items():
            flow_name = full_name.split("/")[0]
            child = by_flow[flow_name]
            step = result[function]
            deployment = temp_store.read_deployment_by_name(full_name)
            # linked to the parent, finished, launched on ECS through the pool
            assert child.deployment_id == deployment.id and child.state.type is StateType.COMPLETED
            assert task_runs[child.parent_task_run_id].state.type is StateType.COMPLETED
            assert child.worker_name == "e2e-worker"
            # one ECS task per child, with this deployment's size and the runner as its command
            launch = launches[child.id]
            assert (launch["cpu"], launch["memory"]) == (str(overrides["cpu"]), str(overrides["memory"]))
            assert launch["command"][-3:] == ["-m", "fleetflow.runner", child.id]
            assert launch["command"][0] in (sys.executable, "python")
            assert launch["task_arn"] in (child.infrastructure_pid or "")
            # the child reports COMPLETED before its process has quite ended: wait for the exit
            assert emulator.wait_for_exit(launch["task_arn"]) == 0
            # the store reached the container through the RunTask overrides only: the database
            # URL (embedded backends), or the server's URL and a token for this one run (http)
            if isinstance(temp_store, HTTPClient):
                assert launch["env"]["FLEETFLOW_API_URL"] == temp_store.base_url
                # the run's token only by reference: a per-run Secrets Manager secret the runner read
                assert "FLEETFLOW_API_KEY" not in launch["env"]
                assert ":secret:fleetflow/run-tokens/" in launch["env"]["FLEETFLOW_API_KEY_SECRET_ARN"]
                assert "ffr_" not in json.dumps(launch)
                assert "FLEETFLOW_DATABASE_URL" not in launch["env"] and "FLEETFLOW_ENCRYPTION_KEY" not in launch["env"]
                assert os.environ["FLEETFLOW_API_KEY"] not in json.dumps(launch)  # the worker's key never leaves it
            else:
                assert launch["env"]["FLEETFLOW_DATABASE_URL"] == resolved_store_url()
            # it ran in that container, from a bundle it fetched from S3 itself
            assert step["pid"] == launch["pid"]
            assert step["endpoint"] is None  # moto reached through the S3 block's endpoint_url only
            assert Path(step["file"]).is_relative_to(Path(launch["cwd"]) / "bundle-cache" / deployment.bundle_digest)
            # its runner measured it through the task metadata endpoint the emulator serves
            usage = RunUsage.model_validate(temp_store.read_flow_run_usage(child.id))
            assert usage.peak_memory_mib.source.startswith("ECS task metadata v4 /task/stats")
            assert usage.peak_memory_mib.value > 20 and usage.platform.kind == "ecs"
            assert usage.platform.region == "us-east-1" and usage.billed_seconds.source.startswith("ECS task metadata")
            assert usage.requested_memory_mib.value == overrides["memory"]
            cost = run_cost(child, usage).cost
            billed = billed_seconds(usage.billed_seconds.value, 60)  # Fargate's one-minute minimum
            assert cost.billed_seconds == billed and cost.amount == pytest.approx(
                task_cost(overrides["cpu"], overrides["memory"], billed, fargate_rate(load_prices(), "us-east-1", "x86_64")))
            # its logs were shipped to the store
            messages = [record.message for record in temp_store.read_logs(flow_run_id=child.id)]
            assert any(f"{function}:" in message for message in messages), messages

        if isinstance(temp_store, HTTPClient):  # each run's token secret goes once its task stopped
            secrets = boto3_client(aws_env.url, "secretsmanager")
            left = lambda: secrets.list_secrets(Filters=[{"Key": "name", "Values": ["fleetflow/run-tokens/"]}])["SecretList"]  # noqa: E731
            wait_until(lambda: left() == [], "the worker to delete the run-token secrets", observe=left)
        # one bundle object per deployment digest (all three share the project, so one object)
        digests = {temp_store.read_deployment_by_name(name).bundle_digest for name in SIZES}
        objects = boto3_client(aws_env.url, "s3").list_objects_v2(Bucket=BUCKET, Prefix="code/").get("Contents", [])
        assert sorted(o["Key"] for o in objects) == sorted(f"code/{bundle_key(d)}" for d in digests)

        # every task ended on moto the way ECS ends a task whose essential container exited
        ecs = boto3_client(aws_env.url, "ecs")
        described = ecs.describe_tasks(cluster=CLUSTER, tasks=[launch["task_arn"] for launch in launches.values()])
        assert {(t["lastStatus"], t["stoppedReason"]) for t in described["tasks"]} == {("STOPPED", ESSENTIAL_EXITED)}

    elapsed = time.monotonic() - started
    print(f"end-to-end test took {elapsed:.1f}s: setup {setup_done - started:.1f}s, "
          f"parent flow {parent_done - setup_done:.1f}s, checks {time.monotonic() - parent_done:.1f}s")
    _print_timeline(temp_store, children, launches)


def test_cancelling_an_ecs_child_stops_its_task_and_its_process(temp_store, aws_env, strict_emulator, ecs_worker):
    """CANCELLING -> the worker's StopTask on moto -> SIGTERM to the container -> CANCELLED."""
    emulator = strict_emulator
    storage = _aws_and_blocks(aws_env.url, temp_store)
    _deploy(storage, {"e2e-sleepy/nap": ("sleepy", {"cpu": 256, "memory": 512})})
    ecs_worker.start()

    with show_containers_on_failure(emulator):
        child = run_deployment("e2e-sleepy/nap", parameters={"seconds": 60}, timeout=0, as_subflow=False)
        _wait(lambda: temp_store.read_flow_run(child.id).state_type is StateType.RUNNING, "the child to run")
        (launch,) = emulator.launched
        assert (launch["cpu"], launch["memory"]) == ("256", "512")

        cancel_flow_run(temp_store, child.id)
        final = _wait(lambda: _final(temp_store, child.id), "the child to end")
        assert final.state.type is StateType.CANCELLED, final.state
        code = emulator.wait_for_exit(launch["task_arn"])
        assert code != 0  # stopped, not finished
        with pytest.raises(ProcessLookupError):
            os.kill(launch["pid"], 0)
        (task,) = boto3_client(aws_env.url, "ecs").describe_tasks(cluster=CLUSTER, tasks=[launch["task_arn"]])["tasks"]
        assert task["lastStatus"] == "STOPPED" and task["stoppedReason"] != ESSENTIAL_EXITED
        print(f"cancelled child: exit code {code}, stoppedReason {task['stoppedReason']!r}, state {final.state.message!r}")
        emulator.raise_errors()
        assert ecs_worker.error is None


@pytest.mark.parametrize("client_backend", ["http"])  # run tokens exist on the team path only
def test_a_killed_worker_leaves_no_run_token_secret_behind(temp_store, aws_env, strict_emulator, monkeypatch):
    """SIGKILL the worker that launched a child (its memory of the launch is gone; the runner
    keeps the lease, so the next worker never re-attaches), start another: once the child
    is final its token secret is gone (the new worker's sweep) and the token is refused."""
    import httpx

    from fleetflow.settings import reset_settings

    monkeypatch.setenv("FLEETFLOW_RUN_TOKEN_SWEEP_INTERVAL", "0.5")
    reset_settings()
    storage = _aws_and_blocks(aws_env.url, temp_store)
    _deploy(storage, {"e2e-sleepy/nap": ("sleepy", {"cpu": 256, "memory": 512})})
    secrets = boto3_client(aws_env.url, "secretsmanager")
    left = lambda: [s["Name"] for s in secrets.list_secrets(  # noqa: E731
        Filters=[{"Key": "name", "Values": ["fleetflow/run-tokens/"]}])["SecretList"]]
    command = [sys.executable, "-m", "fleetflow", "worker", "start", "--pool", POOL, "--name", "e2e-killed"]
    first = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with show_containers_on_failure(strict_emulator):
        try:
            _wait(lambda: first.poll() is None and temp_store.read_work_pool(POOL).last_polled, "the first worker to poll")
            # long enough that the first worker cannot see the run end (and delete its secret) before the kill
            child = run_deployment("e2e-sleepy/nap", parameters={"seconds": 6}, timeout=0, as_subflow=False)
            _wait(lambda: temp_store.read_flow_run(child.id).state_type is StateType.RUNNING, "the child to run")
            token = secrets.get_secret_value(SecretId=f"fleetflow/run-tokens/{child.id}")["SecretString"]
        finally:
            first.kill()  # SIGKILL: no shutdown, nothing deleted on the way out
            first.wait(timeout=30)
        assert left() == [f"fleetflow/run-tokens/{child.id}"]
        second = WorkerThread(POOL, "e2e-restarted").start()
        try:
            final = _wait(lambda: _final(temp_store, child.id), "the child to end")
            wait_until(lambda: left() == [], "the new worker to delete the run-token secret", observe=left)
        finally:
            second.stop()
        assert second.error is None
        strict_emulator.raise_errors()
    assert final.state.type is StateType.COMPLETED, final.state
    assert token.startswith("ffr_")
    refused = httpx.get(f"{temp_store.base_url}/api/v1/flow_runs/{child.id}", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and "tokens stop working when the run is final" in refused.text, refused.text


def _final(client: Any, run_id: str) -> Any:
    run = client.read_flow_run(run_id)
    return run if run.state is not None and run.state.is_final else None


def _wait(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    return wait_until(predicate, what, timeout=timeout)


def _print_timeline(client: Any, runs: list[Any], launches: dict[str, dict]) -> None:
    """Seconds from each child's creation to each of its states, to RunTask and to the emulated
    container's start (shown with ``pytest -s``)."""
    for run in sorted(runs, key=lambda r: r.created):
        states = client.read_flow_run_states(run.id)
        start = states[0].timestamp
        steps = [(s.type.value, s.timestamp.timestamp()) for s in states]
        launch = launches[run.id]
        if launch.get("created_at") is not None:
            steps.append(("RunTask", launch["created_at"].timestamp()))
        steps.append(("process", launch["started_at"]))
        text = ", ".join(f"{name} +{at - start.timestamp():.2f}s" for name, at in sorted(steps, key=lambda x: x[1]))
        print(f"{run.flow_name}: {text}")
