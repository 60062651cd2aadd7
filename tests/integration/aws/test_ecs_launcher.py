"""ECSLauncher against moto's server: the real aiobotocore calls, counted with botocore event hooks.

Moto 5.2 facts these tests rely on (see docs/aws.md): a Fargate RunTask needs container-level
memory, a VPC with DNS hostnames and ``securityGroups`` in the awsvpc configuration (the
builders provide all three); tasks advance one lifecycle step per DescribeTasks unless the
state manager is set to manual progression (done here), StopTask stops at once; moto ignores
``clientToken`` and reports no exit or stop codes. Exit-code / stop-reason mapping is covered by
tests/unit/aws/test_ecs_status_mapping.py with model-validated responses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import urllib.request
from typing import Any, Callable

import pytest

from aws_server import RequestCounter, boto3_client
from waiting import async_wait_until, scaled
from fleetflow.aws import ECSTask
from fleetflow.aws import ecs_requests as rq
from fleetflow.aws.ecs_launcher import ECSLauncher, started_by_for
from fleetflow.aws.ecs_watch import parse_task_arn
from fleetflow.exceptions import ECSConfigError, RunTaskFailure
from fleetflow.orchestrator.schemas import FlowRun
from fleetflow import states as st

CLUSTER = "fleetflow-test"
EXEC_ROLE = "arn:aws:iam::123456789012:role/fleetflow-exec"
FAST = (0.01, 0.05)  # retry waits for tests


def _moto_api(url: str, path: str, body: dict) -> None:
    request = urllib.request.Request(f"{url}/moto-api/{path}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=scaled(60)) as response:
        response.read()


@pytest.fixture
def ecs_env(aws_env):
    """Empty moto with a cluster, and tasks that stay RUNNING until stopped (manual progression)."""
    transition = {"progression": "manual", "times": 1_000_000}
    _moto_api(aws_env.url, "state-manager/set-transition", {"model_name": "ecs::task", "transition": transition})
    boto3_client(aws_env.url, "ecs").create_cluster(clusterName=CLUSTER)
    yield aws_env
    _moto_api(aws_env.url, "state-manager/unset-transition", {"model_name": "ecs::task"})


@pytest.fixture
def counter() -> RequestCounter:
    return RequestCounter()


@pytest.fixture
def block(aws_credentials) -> ECSTask:
    return ECSTask(aws_credentials=aws_credentials, cluster=CLUSTER, image="img:1", task_watch_poll_interval=0.2)


class SteppedClock:
    """A monotonic clock the test moves by hand: poll pacing is checked by what was asked of
    AWS at each step, never by how long the machine took between two calls."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def pass_window(self, interval: float) -> None:
        """Move just past one poll window (a hair over, so float rounding never lands inside it)."""
        self.advance(interval * 1.01)


def make_launcher(counter: RequestCounter | None = None, *hooks: Callable[[Any], None], clock: Callable[[], float] | None = None) -> ECSLauncher:
    def on_client(client: Any) -> None:
        if counter is not None:
            counter.attach(client)
        for hook in hooks:
            hook(client)

    return ECSLauncher(on_client=on_client, retry_wait=FAST, clock=clock or time.monotonic)


def flow_run(n: int = 0, pool: str = "ecs-pool") -> FlowRun:
    return FlowRun(
        id=f"6f1c1e2a-0000-4000-8000-{n:012d}", name=f"run-{n}", flow_name="train", work_pool_name=pool,
        deployment_id="dep-1", state=st.Pending(),
    )


ENV = {"FLEETFLOW_FLOW_RUN_ID": "x", "FLEETFLOW_DATABASE_URL": "sqlite:////tmp/x.db"}


async def launch(launcher: ECSLauncher, block: ECSTask, n: int = 0, **kw: Any):
    return await launcher.launch(block, flow_run(n, **kw), env={**ENV, "FLEETFLOW_FLOW_RUN_ID": flow_run(n).id}, command=["ignored"])


def run(coro):
    return asyncio.run(coro)


def describe(url: str, arn: str) -> dict:
    ecs = boto3_client(url, "ecs")
    return ecs.describe_tasks(cluster=CLUSTER, tasks=[arn], include=["TAGS"])["tasks"][0]


# --- task definitions ------------------------------------------------------------------------------
def test_one_definition_for_many_runs_and_sizes_a_second_for_a_new_image(ecs_env, block, counter):
    async def scenario():
        launcher = make_launcher(counter)
        results = [await launch(launcher, block, n) for n in range(3)]
        bigger = await launch(launcher, block.model_copy(update={"cpu": 4096, "memory": 16384}), 3)
        other = await launch(launcher, block.model_copy(update={"image": "img:2"}), 4)
        await launcher.close()
        return results, bigger, other

    results, bigger, other = run(scenario())
    arns = {r.infrastructure["task_definition_arn"] for r in results}
    assert len(arns) == 1 and bigger.infrastructure["task_definition_arn"] in arns
    assert other.infrastructure["task_definition_arn"] not in arns
    assert counter["RegisterTaskDefinition"] == 2 and counter["RunTask"] == 5
    assert counter["DescribeTaskDefinition"] == 2  # once per family, to find it after a restart
    assert (bigger.infrastructure["cpu"], bigger.infrastructure["memory"]) == (4096, 16384)
    task = describe(ecs_env.url, bigger.handle)
    assert (task["overrides"]["cpu"], task["overrides"]["memory"]) == ("4096", "16384")
    families = boto3_client(ecs_env.url, "ecs").list_task_definition_families()["families"]
    assert len(families) == 2 and all(f.startswith("fleetflow-") for f in families)


def test_restarted_launcher_reuses_the_registered_definition(ecs_env, block, counter):
    first = run(_launch_once(make_launcher(), block, 0))
    second = run(_launch_once(make_launcher(counter), block, 1))
    assert first.infrastructure["task_definition_arn"] == second.infrastructure["task_definition_arn"]
    assert counter["DescribeTaskDefinition"] == 1 and counter["RegisterTaskDefinition"] == 0


async def _launch_once(launcher: ECSLauncher, block: ECSTask, n: int):
    try:
        return await launch(launcher, block, n)
    finally:
        await launcher.close()


def test_concurrent_launches_register_once(ecs_env, block, counter):
    async def scenario():
        launcher = make_launcher(counter)
        results = await asyncio.gather(*(launch(launcher, block, n) for n in range(10)))
        await launcher.close()
        return results

    results = run(scenario())
    assert len({r.handle for r in results}) == 10
    assert counter["RegisterTaskDefinition"] == 1 and counter["DescribeTaskDefinition"] == 1
    assert counter["DescribeVpcs"] == 1 and counter["DescribeSubnets"] == 1


def test_user_task_definition_arn_is_used_as_is(ecs_env, aws_credentials, counter):
    ecs = boto3_client(ecs_env.url, "ecs")
    arn = ecs.register_task_definition(
        family="mine", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="512", memory="1024",
        containerDefinitions=[{"name": "app", "image": "mine:1", "memory": 1024}],
    )["taskDefinition"]["taskDefinitionArn"]
    block = ECSTask(aws_credentials=aws_credentials, cluster=CLUSTER, task_definition_arn=arn, container_name="app")

    async def scenario():
        launcher = make_launcher(counter)
        results = [await launch(launcher, block, n) for n in range(2)]
        with pytest.raises(ECSConfigError, match="no container named 'flow'"):
            await launch(launcher, block.model_copy(update={"container_name": "flow"}), 9)
        await launcher.close()
        return results

    results = run(scenario())
    assert {r.infrastructure["task_definition_arn"] for r in results} == {arn}
    assert (results[0].infrastructure["cpu"], results[0].infrastructure["memory"]) == (512, 1024)
    assert counter["RegisterTaskDefinition"] == 0 and counter["DescribeTaskDefinition"] == 1


def test_auto_deregister_after_the_run_finishes(ecs_env, block, counter):
    block = block.model_copy(update={"auto_deregister_task_definition": True, "task_watch_poll_interval": 0.01})

    async def scenario():
        launcher = make_launcher(counter)
        result = await launch(launcher, block, 0)
        assert counter["DeregisterTaskDefinition"] == 0
        boto3_client(ecs_env.url, "ecs").stop_task(cluster=CLUSTER, task=result.handle, reason="done")
        status = (await launcher.statuses([(result.handle, block)]))[result.handle]
        await launcher.close()
        return result, status

    result, status = run(scenario())
    assert status.finished and counter["DeregisterTaskDefinition"] == 1
    td = boto3_client(ecs_env.url, "ecs").describe_task_definition(taskDefinition=result.infrastructure["task_definition_arn"])
    assert td["taskDefinition"]["status"] == "INACTIVE"


# --- RunTask -------------------------------------------------------------------------------------------
def test_run_task_request_carries_per_run_values_only_in_overrides(ecs_env, block):
    block = block.model_copy(update={"env": {"MODE": "fast"}, "labels": {"team": "ml"}, "cpu": 2048, "memory": 4096})
    result = run(_launch_once(make_launcher(), block, 7))
    task = describe(ecs_env.url, result.handle)
    (override,) = task["overrides"]["containerOverrides"]
    env = {e["name"]: e["value"] for e in override["environment"]}
    assert env["FLEETFLOW_FLOW_RUN_ID"] == flow_run(7).id and env["MODE"] == "fast"
    assert override["command"] == ["python", "-m", "fleetflow.runner", flow_run(7).id]
    assert (override["cpu"], override["memory"]) == (2048, 4096)
    tags = {t["key"]: t["value"] for t in task["tags"]}
    assert tags["fleetflow:flow-run-id"] == flow_run(7).id and tags["fleetflow:flow"] == "train"
    assert tags["fleetflow:deployment-id"] == "dep-1" and tags["team"] == "ml"
    assert task["startedBy"] == started_by_for("ecs-pool") == "fleetflow/ecs-pool"
    assert result.handle == task["taskArn"] and parse_task_arn(result.handle).cluster == CLUSTER
    assert result.infrastructure == {
        "kind": "ecs", "cpu": 2048, "memory": 4096, "launch_type": "FARGATE", "cluster": CLUSTER,
        "region": "us-east-1", "task_definition_arn": task["taskDefinitionArn"], "task_arn": task["taskArn"],
    }
    td = boto3_client(ecs_env.url, "ecs").describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    text = json.dumps(td, default=str)
    assert flow_run(7).id not in text and "fast" not in text and "run-7" not in text


def throttle(times: int, code: str = "ThrottlingException") -> Callable[[Any], None]:
    """A ``before-call.ecs.RunTask`` hook answering the first ``times`` calls with a throttling
    error, before anything is sent (a real botocore hook, nothing patched)."""
    from botocore.awsrequest import AWSResponse

    seen = {"calls": 0}

    def hook(**kwargs: Any):
        seen["calls"] += 1
        if seen["calls"] <= times:
            error = {"Error": {"Code": code, "Message": "Rate exceeded"}, "ResponseMetadata": {"HTTPStatusCode": 400}}
            return AWSResponse("https://ecs", 400, {}, None), error
        return None

    def register(client: Any) -> None:
        if client.meta.service_model.service_name == "ecs":
            client.meta.events.register("before-call.ecs.RunTask", hook)

    register.seen = seen  # type: ignore[attr-defined]
    return register


def test_throttled_run_task_is_retried_into_exactly_one_task(ecs_env, block, counter):
    hook = throttle(3)
    result = run(_launch_once(make_launcher(counter, hook), block, 0))
    assert hook.seen["calls"] == 4 and counter["RunTask"] == 1  # 3 answered by the hook, 1 sent
    tasks = boto3_client(ecs_env.url, "ecs").list_tasks(cluster=CLUSTER)["taskArns"]
    assert tasks == [result.handle]


def test_persistent_throttling_gives_up_with_an_aws_error(ecs_env, block):
    from fleetflow.exceptions import AwsError

    hook = throttle(100, "RequestLimitExceeded")
    with pytest.raises(AwsError) as err:
        run(_launch_once(make_launcher(None, hook), block, 0))
    assert err.value.operation == "RunTask" and err.value.code == "RequestLimitExceeded"
    assert err.value.__cause__ is not None and hook.seen["calls"] == 6
    assert boto3_client(ecs_env.url, "ecs").list_tasks(cluster=CLUSTER)["taskArns"] == []


def test_run_task_failures_raise_with_the_fix(ecs_env, block):
    """RunTask answers 200 with ``failures[]`` (moto never does; the response is stubbed and
    validated against botocore's RunTask output shape)."""
    import botocore.session
    from botocore.awsrequest import AWSResponse
    from botocore.stub import Stubber

    failure = {"arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/x/1", "reason": "RESOURCE:MEMORY"}
    parsed = {"tasks": [], "failures": [failure], "ResponseMetadata": {"HTTPStatusCode": 200}}
    sync = botocore.session.get_session().create_client("ecs", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    Stubber(sync).add_response("run_task", {"tasks": [], "failures": [failure]})  # validates the shape

    def register(client: Any) -> None:
        if client.meta.service_model.service_name == "ecs":
            client.meta.events.register("before-call.ecs.RunTask", lambda **kw: (AWSResponse("https://ecs", 200, {}, None), parsed))

    ec2_block = block.model_copy(update={"launch_type": "EC2", "memory": 4096, "cpu": 1024})
    with pytest.raises(RunTaskFailure) as err:
        run(_launch_once(make_launcher(None, register), ec2_block, 0))
    assert f"cluster '{CLUSTER}' has no container instance with 4096 MiB free; use FARGATE or add capacity" in str(err.value)
    assert err.value.failures == [failure]


def test_invalid_block_and_plain_secrets_fail_before_any_aws_call(ecs_env, block, counter):
    bad_size = block.model_copy(update={"cpu": 256, "memory": 8192})  # model_copy skips validators
    secret_env = {**ENV, "FLEETFLOW_DATABASE_URL": "postgresql://u:hunter2@db/x"}

    async def scenario():
        launcher = make_launcher(counter)
        with pytest.raises(ECSConfigError, match="memory"):
            await launch(launcher, bad_size, 0)
        with pytest.raises(ECSConfigError, match="secrets=") as err:
            await launcher.launch(block, flow_run(1), env=secret_env, command=[])
        assert "hunter2" not in str(err.value)
        await launcher.close()

    run(scenario())
    assert counter.total == 0


# --- network -------------------------------------------------------------------------------------------
def test_vpc_discovery_is_cached_and_explicit_subnets_skip_it(ecs_env, block, counter):
    ec2 = boto3_client(ecs_env.url, "ec2")
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    expected = sorted(s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default_vpc]}])["Subnets"])

    async def scenario():
        launcher = make_launcher(counter)
        results = await asyncio.gather(*(launch(launcher, block, n) for n in range(20)))
        with_vpc = block.model_copy(update={"vpc_id": default_vpc})
        results += [await launch(launcher, with_vpc, n) for n in range(20, 25)]
        explicit = block.model_copy(update={"subnets": [expected[0]], "security_groups": [], "assign_public_ip": False})
        results.append(await launch(launcher, explicit, 30))
        await launcher.close()
        return results

    results = run(scenario())
    assert counter["DescribeVpcs"] == 1 and counter["DescribeSubnets"] == 2  # default VPC, then by vpc_id
    first = describe(ecs_env.url, results[0].handle)
    assert first["attachments"] == [] or first["attachments"][0]["type"] == "ElasticNetworkInterface"
    assert counter["RunTask"] == 26


# --- watching -----------------------------------------------------------------------------------------
def test_five_launches_one_describe_per_poll_and_cached_in_between(ecs_env, block, counter):
    block = block.model_copy(update={"task_watch_poll_interval": 1.0})

    async def scenario():
        clock = SteppedClock()
        launcher = make_launcher(counter, clock=clock)
        results = [await launch(launcher, block, n) for n in range(5)]
        watched = [(r.handle, block) for r in results]
        before = counter["DescribeTasks"]
        first = await launcher.statuses(watched)  # known from RunTask: nothing to ask yet
        for _ in range(5):
            clock.advance(block.task_watch_poll_interval / 10)  # the worker's ticks, inside one window: cached
            await launcher.statuses(watched)
        after_burst = counter["DescribeTasks"] - before
        clock.pass_window(block.task_watch_poll_interval)
        second = await launcher.statuses(watched)
        await launcher.close()
        return first, second, after_burst, counter["DescribeTasks"] - before

    first, second, burst, total = run(scenario())
    assert burst == 1 and total - burst == 1  # the first call describes (never polled), then cached
    assert all(s.started and not s.finished for s in [*first.values(), *second.values()])


def test_kill_stops_the_task_and_the_next_poll_reports_it(ecs_env, block, counter):
    block = block.model_copy(update={"task_watch_poll_interval": 0.01})

    async def scenario():
        clock = SteppedClock()
        launcher = make_launcher(counter, clock=clock)
        result = await launch(launcher, block, 0)
        await launcher.kill(result.handle, block)
        clock.pass_window(block.task_watch_poll_interval)
        status = (await launcher.statuses([(result.handle, block)]))[result.handle]
        await launcher.close()
        return result, status

    result, status = run(scenario())
    assert counter["StopTask"] == 1
    task = describe(ecs_env.url, result.handle)
    assert task["desiredStatus"] == "STOPPED" and "fleetflow" in task["stoppedReason"]
    assert status.finished and not status.missing and "Stopped by fleetflow" in status.crash_message()


def test_fresh_launcher_reattaches_by_arn(ecs_env, block, counter):
    first = run(_launch_once(make_launcher(), block, 0))

    async def reattach():
        clock = SteppedClock()
        launcher = make_launcher(counter, clock=clock)
        watched = [(first.handle, block)]
        running = (await launcher.statuses(watched))[first.handle]
        boto3_client(ecs_env.url, "ecs").stop_task(cluster=CLUSTER, task=first.handle, reason="spot went away")
        clock.pass_window(block.task_watch_poll_interval)
        stopped = (await launcher.statuses(watched))[first.handle]
        await launcher.close()
        return running, stopped

    running, stopped = run(reattach())
    assert running.started and not running.finished
    assert stopped.finished and "spot went away" in stopped.reason
    assert counter["DescribeTasks"] == 2 and counter["RunTask"] == 0


def test_unknown_arn_is_missing(ecs_env, block):
    ghost = f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/00000000000000000000000000000000"
    status = run(_statuses_once(make_launcher(), [(ghost, block)]))[ghost]
    assert status.finished and status.missing


async def _statuses_once(launcher: ECSLauncher, watched):
    try:
        return await launcher.statuses(watched)
    finally:
        await launcher.close()


def test_describe_errors_keep_the_last_status_and_respect_the_poll_interval(ecs_env, block):
    """A failing DescribeTasks (here AccessDenied, answered by a before-call hook) is not retried
    every worker tick and does not finish the run."""
    from botocore.awsrequest import AWSResponse

    seen = {"calls": 0}

    def deny(**kwargs: Any):
        seen["calls"] += 1
        error = {"Error": {"Code": "AccessDeniedException", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return AWSResponse("https://ecs", 400, {}, None), error

    def register(client: Any) -> None:
        client.meta.events.register("before-call.ecs.DescribeTasks", deny)

    ghost = f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/11111111111111111111111111111111"

    block = block.model_copy(update={"task_watch_poll_interval": 30.0})

    async def scenario():
        launcher = make_launcher(None, register)
        statuses = [await launcher.statuses([(ghost, block)]) for _ in range(5)]
        await launcher.close()
        return statuses

    statuses = run(scenario())
    assert seen["calls"] == 1
    assert all(not s[ghost].finished for s in statuses)


def test_missing_region_is_a_configuration_error(ecs_env, monkeypatch):
    from fleetflow.aws import AwsCredentials

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    creds = AwsCredentials(aws_client_parameters={"endpoint_url": ecs_env.url})
    block = ECSTask(aws_credentials=creds, cluster=CLUSTER, image="img:1")
    with pytest.raises(ECSConfigError, match="region"):
        run(_launch_once(make_launcher(), block, 0))


def test_find_tasks_by_started_by(ecs_env, block):
    async def scenario():
        launcher = make_launcher()
        mine = [await launch(launcher, block, n) for n in range(3)]
        other_pool = await launch(launcher, block, 9, pool="other")
        found_all = await launcher.find_tasks(block, started_by_for("ecs-pool"))
        found_one = await launcher.find_tasks(block, started_by_for("ecs-pool"), flow_run_id=flow_run(1).id)
        await launcher.close()
        return mine, other_pool, found_all, found_one

    mine, other_pool, found_all, found_one = run(scenario())
    assert {t.arn for t in found_all} == {r.handle for r in mine} and other_pool.handle not in {t.arn for t in found_all}
    assert [t.arn for t in found_one] == [mine[1].handle] and found_one[0].flow_run_id == flow_run(1).id
    assert found_one[0].last_status == "RUNNING"


# --- CloudWatch logs -------------------------------------------------------------------------------------
def test_cloudwatch_lines_land_in_the_run_logs_including_the_tail(ecs_env, block, temp_store):
    run_record = temp_store.create_flow_run("train", state=st.Pending(), work_pool_name="ecs-pool")
    block = block.model_copy(update={"stream_output": True, "configure_cloudwatch_logs": True,
                                     "execution_role_arn": EXEC_ROLE, "task_watch_poll_interval": 0.01})
    logs = boto3_client(ecs_env.url, "logs")

    def put(stream: str, *lines: str) -> None:
        now = int(time.time() * 1000)
        events = [{"timestamp": now + i, "message": line} for i, line in enumerate(lines)]
        logs.put_log_events(logGroupName=rq.DEFAULT_LOG_GROUP, logStreamName=stream, logEvents=events)

    async def scenario():
        clock = SteppedClock()
        launcher = make_launcher(clock=clock)
        result = await launcher.launch(block, run_record, env={"FLEETFLOW_FLOW_RUN_ID": run_record.id}, command=[])
        watched = [(result.handle, block)]
        stream = f"{rq.LOG_STREAM_PREFIX}/flow/{parse_task_arn(result.handle).task_id}"
        clock.pass_window(block.task_watch_poll_interval)
        await launcher.statuses(watched)  # no stream yet: waited for, not an error
        logs.create_log_group(logGroupName=rq.DEFAULT_LOG_GROUP)
        logs.create_log_stream(logGroupName=rq.DEFAULT_LOG_GROUP, logStreamName=stream)
        put(stream, "hello from the container", "training epoch 1")
        clock.pass_window(block.task_watch_poll_interval)
        await launcher.statuses(watched)
        middle = [r.message for r in temp_store.read_logs(flow_run_id=run_record.id)]
        put(stream, "last words before exit")
        boto3_client(ecs_env.url, "ecs").stop_task(cluster=CLUSTER, task=result.handle, reason="done")
        clock.pass_window(block.task_watch_poll_interval)
        final = (await launcher.statuses(watched))[result.handle]
        clock.pass_window(block.task_watch_poll_interval)
        await launcher.statuses(watched)  # after STOPPED nothing is read twice
        await launcher.close()
        return middle, final

    middle, final = run(scenario())
    assert middle == ["hello from the container", "training epoch 1"]
    assert final.finished
    records = temp_store.read_logs(flow_run_id=run_record.id)
    assert [r.message for r in records] == [*middle, "last words before exit"]
    assert all(r.name == "ecs.flow" for r in records)


def test_restarted_launcher_follows_the_logs_of_a_reattached_task(ecs_env, block, temp_store):
    run_record = temp_store.create_flow_run("train", state=st.Pending(), work_pool_name="ecs-pool")
    block = block.model_copy(update={"stream_output": True, "configure_cloudwatch_logs": True,
                                     "execution_role_arn": EXEC_ROLE, "task_watch_poll_interval": 0.01})
    result = run(_launch_for(make_launcher(), block, run_record))
    stream = f"{rq.LOG_STREAM_PREFIX}/flow/{parse_task_arn(result.handle).task_id}"
    logs = boto3_client(ecs_env.url, "logs")
    logs.create_log_group(logGroupName=rq.DEFAULT_LOG_GROUP)
    logs.create_log_stream(logGroupName=rq.DEFAULT_LOG_GROUP, logStreamName=stream)
    logs.put_log_events(logGroupName=rq.DEFAULT_LOG_GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "written while no worker watched"}])
    boto3_client(ecs_env.url, "ecs").stop_task(cluster=CLUSTER, task=result.handle, reason="done")
    status = run(_statuses_once(make_launcher(), [(result.handle, block)]))[result.handle]
    assert status.finished
    assert [r.message for r in temp_store.read_logs(flow_run_id=run_record.id)] == ["written while no worker watched"]


async def _launch_for(launcher: ECSLauncher, block: ECSTask, record: FlowRun):
    try:
        return await launcher.launch(block, record, env={"FLEETFLOW_FLOW_RUN_ID": record.id}, command=[])
    finally:
        await launcher.close()


# --- through the real worker ------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:no worker has polled")
def test_worker_launches_on_ecs_and_crashes_a_task_stopped_under_it(ecs_env, aws_credentials, temp_store, project, tmp_path):
    from fleetflow.deployments import Deployment, run_deployment
    from fleetflow.filesystems import LocalFileSystem
    from fleetflow.orchestrator.schemas import WorkPool
    from fleetflow.states import StateType
    from fleetflow.worker import Worker
    from worker_helpers import load

    ECSTask(aws_credentials=aws_credentials, cluster=CLUSTER, image="img:1", task_watch_poll_interval=0.05).save("moto-ecs", overwrite=True)
    temp_store.create_work_pool(WorkPool(id="", name="ecs-pool", type="ecs", infrastructure_block="ecs-task/moto-ecs"), overwrite=True)
    storage = LocalFileSystem(basepath=str(tmp_path / "storage"))
    storage.save("local-code", overwrite=True)
    Deployment.build_from_flow(
        load(project, "echo"), "on-ecs", path=str(project), work_pool_name="ecs-pool", storage=storage,
        infra_overrides={"cpu": 2048, "memory": 4096},
    ).apply()
    flow_run_id = run_deployment("echo/on-ecs", timeout=0, as_subflow=False).id

    async def scenario():
        worker = Worker("ecs-pool", name="w-ecs", client=temp_store, poll_interval=0.05)
        seen = lambda: temp_store.read_flow_run(flow_run_id).state  # noqa: E731
        handle = await _tick_until(worker, lambda: temp_store.read_flow_run(flow_run_id).infrastructure_pid, "the launch handle", seen)
        boto3_client(ecs_env.url, "ecs").stop_task(cluster=CLUSTER, task=handle, reason="Essential container in task exited")
        await _tick_until(worker, lambda: temp_store.read_flow_run(flow_run_id).state.is_final, "a final state", seen)
        await worker.shutdown()
        return handle

    handle = run(scenario())
    final = temp_store.read_flow_run(flow_run_id)
    assert handle.startswith(f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/")
    assert final.infrastructure["task_arn"] == handle and final.infrastructure["cpu"] == 2048
    assert final.infrastructure["memory"] == 4096 and final.infrastructure["kind"] == "ecs"
    assert final.state.type is StateType.CRASHED
    assert "Essential container in task exited" in final.state.message
    task = describe(ecs_env.url, handle)
    assert task["overrides"]["cpu"] == "2048"


async def _tick_until(worker: Any, condition: Callable[[], Any], what: str = "the worker to settle the run",
                      observe: Callable[[], Any] | None = None) -> Any:
    """Drive the worker one tick at a time until ``condition`` holds (generous, scaled deadline)."""

    async def ticked() -> Any:
        await worker.tick()
        return condition()

    return await async_wait_until(ticked, what, observe=observe)


def _capture_run_task(sent: list) -> Callable[[Any], None]:
    """A ``provide-client-params.ecs.RunTask`` hook keeping each RunTask request as sent."""

    def hook(params: dict, **kwargs: Any) -> None:
        sent.append(json.loads(json.dumps(params, default=str)))

    def register(client: Any) -> None:
        if client.meta.service_model.service_name == "ecs":
            client.meta.events.register("provide-client-params.ecs.RunTask", hook)

    return register


def test_a_run_token_travels_by_secrets_manager_and_goes_when_the_launch_ends(ecs_env, block):
    """Over HTTP the runner env holds the run's token: it must reach the container only through
    a per-run secret under fleetflow/run-tokens/, never RunTask or DescribeTasks text."""
    block = block.model_copy(update={"task_watch_poll_interval": 0.01})
    token = "ffr_" + "t0ken-for-this-run-only-9r" * 2
    env = {"FLEETFLOW_FLOW_RUN_ID": flow_run(5).id, "FLEETFLOW_API_URL": "http://127.0.0.1:4200", "FLEETFLOW_API_KEY": token}
    sent: list = []
    secrets = boto3_client(ecs_env.url, "secretsmanager")

    async def scenario():
        clock = SteppedClock()
        launcher = make_launcher(None, _capture_run_task(sent), clock=clock)
        result = await launcher.launch(block, flow_run(5), env=env, command=["ignored"])
        stored = secrets.get_secret_value(SecretId=f"fleetflow/run-tokens/{flow_run(5).id}")
        task = describe(ecs_env.url, result.handle)
        await launcher.kill(result.handle, block)
        clock.pass_window(block.task_watch_poll_interval)
        status = (await launcher.statuses([(result.handle, block)]))[result.handle]
        await launcher.close()
        return stored, task, status

    stored, task, status = run(scenario())
    assert stored["SecretString"] == token
    (override,) = task["overrides"]["containerOverrides"]
    container_env = {e["name"]: e["value"] for e in override["environment"]}
    assert container_env["FLEETFLOW_API_KEY_SECRET_ARN"] == stored["ARN"] and "FLEETFLOW_API_KEY" not in container_env
    assert container_env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] == ecs_env.url  # the block's endpoint (moto)
    assert len(sent) == 1 and token not in json.dumps(sent) and token not in json.dumps(task, default=str)
    assert status.finished
    listed = secrets.list_secrets(Filters=[{"Key": "name", "Values": ["fleetflow/run-tokens/"]}])["SecretList"]
    assert listed == []  # deleted (no recovery window) once the launch had finished


def test_the_runner_reads_its_token_from_the_secret(ecs_env, monkeypatch):
    from fleetflow.aws.run_token_secrets import resolve_token_from_environment

    arn = boto3_client(ecs_env.url, "secretsmanager").create_secret(
        Name="fleetflow/run-tokens/r-1", SecretString="ffr_from-the-secret")["ARN"]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", ecs_env.url)
    environ = {"FLEETFLOW_API_KEY_SECRET_ARN": arn}
    assert resolve_token_from_environment(environ) is True
    assert environ["FLEETFLOW_API_KEY"] == "ffr_from-the-secret"
    assert resolve_token_from_environment(environ) is False  # a key already set is kept


def _token_secrets(url: str) -> list[str]:
    listed = boto3_client(url, "secretsmanager").list_secrets(Filters=[{"Key": "name", "Values": ["fleetflow/run-tokens/"]}])
    return sorted(s["Name"] for s in listed["SecretList"])


def test_a_restarted_launcher_deletes_the_token_secret_of_a_task_it_did_not_launch(ecs_env, block):
    """Deletion is keyed by the run (the task's overrides name its secret), not by what the
    launching process remembered: a fresh launcher that only ever sees the task deletes it."""
    block = block.model_copy(update={"task_watch_poll_interval": 0.01})
    fr = flow_run(6)
    env = {"FLEETFLOW_FLOW_RUN_ID": fr.id, "FLEETFLOW_API_URL": "http://127.0.0.1:4200", "FLEETFLOW_API_KEY": "ffr_" + "x" * 43}

    async def scenario():
        first = make_launcher()
        handle = (await first.launch(block, fr, env=env, command=["ignored"])).handle
        await first.close()  # the worker that launched it is gone, with everything it remembered
        before = _token_secrets(ecs_env.url)
        clock = SteppedClock()
        second = make_launcher(clock=clock)
        running = (await second.statuses([(handle, block)]))[handle]
        left_while_running = _token_secrets(ecs_env.url)
        await second.kill(handle, block)
        clock.pass_window(block.task_watch_poll_interval)
        stopped = (await second.statuses([(handle, block)]))[handle]
        await second.close()
        return before, running, left_while_running, stopped

    before, running, left_while_running, stopped = run(scenario())
    assert before == left_while_running == [f"fleetflow/run-tokens/{fr.id}"]  # kept while the task runs
    assert not running.finished and stopped.finished
    assert _token_secrets(ecs_env.url) == []


def test_the_token_sweep_deletes_only_secrets_of_final_runs_under_the_prefix(ecs_env, block):
    """One bounded page per sweep; a run the store does not know (another deployment's), a run
    still going, a secret rewritten after its run ended (a relaunch) and names outside the
    prefix are all left alone."""
    secrets = boto3_client(ecs_env.url, "secretsmanager")
    for name in ("final-1", "final-2", "running", "unknown", "relaunched"):
        secrets.create_secret(Name=f"fleetflow/run-tokens/{name}", SecretString="ffr_x")
    secrets.create_secret(Name="fleetflow/run-tokens-elsewhere/final-1", SecretString="keep")
    secrets.create_secret(Name="other/fleetflow/run-tokens/final-1", SecretString="keep")
    now = dt.datetime.now(dt.timezone.utc)
    # when each run became final, as the store says (running and unknown are not final)
    store = {"final-1": now + dt.timedelta(hours=1), "final-2": now + dt.timedelta(hours=1),
             "relaunched": now - dt.timedelta(hours=1)}  # fmt: skip
    asked: list[list[str]] = []

    async def ended(run_ids: list[str]) -> dict:
        asked.append(sorted(run_ids))
        return {r: store[r] for r in run_ids if r in store}

    async def scenario():
        launcher = make_launcher()
        pages = [await launcher.sweep_run_tokens(block, ended, limit=3) for _ in range(3)]
        await launcher.close()
        return pages

    pages = run(scenario())
    assert sorted(r for page in pages for r in page) == ["final-1", "final-2"]
    assert all(len(a) <= 3 for a in asked)  # bounded: one page of at most `limit` per sweep
    assert sorted(set().union(*map(set, asked))) == ["final-1", "final-2", "relaunched", "running", "unknown"]
    assert _token_secrets(ecs_env.url) == sorted(f"fleetflow/run-tokens/{n}" for n in ("relaunched", "running", "unknown"))
    others = {s["Name"] for s in secrets.list_secrets()["SecretList"]}
    assert {"fleetflow/run-tokens-elsewhere/final-1", "other/fleetflow/run-tokens/final-1"} <= others
