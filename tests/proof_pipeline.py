"""The issue's proof, on one machine: Terraform -> blocks -> deployments -> ECS sub-flows -> results.

What runs after ``terraform apply`` of ``terraform/examples/ecs-subflows`` against moto's server
(``tests/terraform/conftest.py`` ``applied_example``; the tests are
``tests/terraform/test_example_server_path.py`` and ``test_example_direct_path.py``):

1. the secrets Terraform created get their values (the README's ``aws secretsmanager
   put-secret-value`` steps): on the server path (the example's default: ``modules/server``
   behind an HTTPS ALB) the server this test started on 127.0.0.1 stands in for the ALB's
   target: the server's database URL, and a ``worker``-scoped API key in the worker's secret. On
   the direct-PostgreSQL path (``create_server = false``): the store URL in the database-URL secret;
2. ``register_blocks_from_terraform`` (what ``fleetflow aws register-blocks --from-terraform``
   runs) saves the AwsCredentials, S3 and ECSTask blocks and the ECS work pool;
3. ``examples/ml_pipeline/deploy.py``'s ``deploy_ecs()`` applies the flagship example's three
   deployments (fetch 1024/2048, preprocess 512/1024, train 2048/4096) with its code bundle
   uploaded to the bucket Terraform created;
4. a worker (``fleetflow.worker.Worker`` in a thread) launches each sub-flow as an ECS task on
   the Terraform cluster; the test-side ECS emulator (``tests/ecs_emulator.py``) runs each
   task's container command as a local process with its own working folder and HOME. Over
   HTTP the worker holds the key it would get from its task definition's ECS ``secrets`` (read
   from Secrets Manager), and each runner gets the server URL and the per-run token (through
   its own Secrets Manager secret), never a database URL; directly, the runner gets the store
   URL from the Secrets Manager secret. It fetches the bundle from the Terraform bucket through
   the S3 block, runs the flow and reports back;
5. the parent ``ml_pipeline`` receives the three results.

``terraform destroy`` and its checks (the cluster INACTIVE, no bucket left) run when the module's
shared apply is torn down.

Nothing in moto or fleetflow is patched. One deviation from real AWS, explained in
``terraform_helpers.bucket_policy_suspended``: moto applies the bucket's TLS-only Deny to every
object request whatever the transport, so the policy is lifted while flows run and put back
before ``terraform destroy``.

docs/aws.md "Provisioning with Terraform" is the real-AWS version of the same steps.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ecs_emulator import ESSENTIAL_EXITED, ECSEmulator
from ecs_harness import WorkerThread, resolved_store_url, show_containers_on_failure
from terraform_helpers import bucket_policy_suspended
from waiting import wait_until

from fleetflow.aws.run_token_secrets import SECRET_ARN_ENV, SECRET_PREFIX, secret_name
from fleetflow.aws.terraform import register_blocks_from_terraform
from fleetflow.bundles import bundle_key
from fleetflow.orchestrator import Orchestrator
from fleetflow.settings import get_settings
from fleetflow.states import StateType

EXAMPLE_DIR = Path(__file__).resolve().parents[1] / "examples" / "ml_pipeline"

# The sizes examples/ml_pipeline/deploy.py gives each sub-flow: flow name -> (cpu, memory).
EXPECTED_SIZES = {"fetch-data": ("1024", "2048"), "preprocess": ("512", "1024"), "train": ("2048", "4096")}
# 400 rows are more than the 16 KiB stored inline in the store (INLINE_LIMIT), so the rows the
# sub-flows pass on travel as pickled results in the S3 results block register-blocks created.
N_ROWS = 400
WORKER_NAME = "proof-worker"
WORKER_KEY_NAME = "proof-worker-key"


class Timeline:
    """Seconds since the test started, per step (printed at the end, or on failure)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last = self.started
        self.steps: list[tuple[str, float, float]] = []

    def mark(self, what: str) -> None:
        now = time.monotonic()
        self.steps.append((what, now - self.started, now - self.last))
        self.last = now

    def total(self) -> float:
        return time.monotonic() - self.started

    def render(self) -> str:
        return "\n".join(f"  +{at:6.1f}s  ({took:5.1f}s)  {what}" for what, at, took in self.steps)


@contextlib.contextmanager
def example_modules() -> Iterator[tuple[Any, Any]]:
    """``(flows, deploy)`` of examples/ml_pipeline, imported the way its run.py does (its folder on
    sys.path), without leaving them in sys.modules for other tests (tests/e2e has a ``flows`` too)."""
    import importlib

    names = ("flows", "deploy")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.path.insert(0, str(EXAMPLE_DIR))
    try:
        yield importlib.import_module("flows"), importlib.import_module("deploy")
    finally:
        sys.path.remove(str(EXAMPLE_DIR))
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def run_the_pipeline(applied: Any, client: Any, timeline: Timeline, *, server_store_url: str | None) -> None:
    """Steps 1-5 on ``applied`` (a ``conftest.AppliedExample``) with ``client`` as the store:
    over the server when ``server_store_url`` (the database behind the local server) is given."""
    example, endpoint, outputs, aws, pool = applied.directory, applied.endpoint, applied.outputs, applied.aws, applied.pool
    over_http = server_store_url is not None
    # The README's `aws secretsmanager put-secret-value` steps: the values never enter Terraform.
    if over_http:
        worker_client = _fill_server_secrets(aws, outputs, client, server_store_url)
    else:
        aws["secretsmanager"].put_secret_value(SecretId=outputs["database_url_secret_arn"], SecretString=resolved_store_url())
        worker_client = None

    # Over HTTP this goes through the server: `client` is the HTTP client of the local server.
    result = register_blocks_from_terraform(example, aws_client_parameters={"endpoint_url": endpoint})
    assert [(i.ref, i.status) for i in result.items] == [
        ("aws-credentials/fleetflow-aws", "created"),
        ("s3/fleetflow-code", "created"),
        ("s3/fleetflow-results", "created"),
        ("ecs-task/fleetflow-ecs", "created"),
        (pool, "created"),
    ]
    timeline.mark("secret value + register-blocks")

    bucket = outputs["bucket_name"]
    with bucket_policy_suspended(aws["s3"], bucket) as policy, example_modules() as (flows, deploy):
        assert [s["Sid"] for s in policy["Statement"]] == ["DenyInsecureTransport"]
        assert policy["Statement"][0]["Effect"] == "Deny"
        assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": ["false"]}}

        deployment_ids = deploy.deploy_ecs()  # `python examples/ml_pipeline/deploy.py --ecs`
        assert len(deployment_ids) == 3
        timeline.mark("deploy_ecs: three deployments, bundle uploaded")

        emulator = ECSEmulator(
            endpoint, outputs["region"], poll_interval=0.05,
            # Like separate containers: S3 and ECS reached only through the blocks' endpoint_url,
            # own HOME, and bundles cached in the container's own (empty) working folder.
            endpoint_env=False, isolated_home=True, extra_env={"FLEETFLOW_BUNDLE_CACHE_DIR": "bundle-cache"},
        )
        worker = WorkerThread(pool, WORKER_NAME, client=worker_client)
        with emulator, show_containers_on_failure(emulator, lambda: f"timeline so far:\n{timeline.render()}"):
            worker.start()
            try:
                started = time.monotonic()
                pipeline = flows.ml_pipeline(n=N_ROWS)
                timeline.mark(f"ml_pipeline(n={N_ROWS}) through the worker and the ECS emulator")
                if over_http:
                    # The worker deletes a run's token secret once it has seen the task stop, which
                    # can come after the parent returns: wait for it while the worker still runs.
                    wait_until(lambda: not _token_secrets(aws), "the worker to delete every run-token secret",
                               observe=lambda: _token_secrets(aws))
            finally:
                worker.stop()
                if worker_client is not None:
                    worker_client.close()
            emulator.raise_errors()
            assert worker.error is None
            _check_runs(client, emulator, outputs, aws, pipeline)
            if over_http:
                _check_http_path(client, emulator, aws, server_store_url)
            _print_children(client, emulator, started)
            _check_bundle_in_terraform_bucket(client, aws, outputs)
            timeline.mark("checks")


def _fill_server_secrets(aws: dict[str, Any], outputs: dict[str, Any], client: Any, store_url: str) -> Any:
    """The server path's README steps, with the local server in place of the ALB's target; returns
    the worker's client, built the way the worker container gets its settings."""
    from fleetflow.client.http import HTTPClient

    secrets = aws["secretsmanager"]
    assert outputs.get("database_url_secret_arn") is None  # flow runs get no database URL at all
    secrets.put_secret_value(SecretId=outputs["server_database_url_secret_arn"], SecretString=store_url)
    _key, worker_key = client.create_api_key(WORKER_KEY_NAME, "worker")  # `fleetflow api-key create ... --scope worker`
    secrets.put_secret_value(SecretId=outputs["worker_api_key_secret_arn"], SecretString=worker_key)

    # What ECS gives the worker container: its task definition's env, and its secrets resolved.
    (service,) = aws["ecs"].describe_services(cluster=outputs["cluster_arn"], services=[outputs["worker_service_name"]])["services"]
    definition = aws["ecs"].describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    (container,) = definition["containerDefinitions"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["FLEETFLOW_API_URL"] == outputs["api_url"]
    assert "FLEETFLOW_DATABASE_URL" not in env and container["secrets"] == [
        {"name": "FLEETFLOW_API_KEY", "valueFrom": outputs["worker_api_key_secret_arn"]}]
    key = secrets.get_secret_value(SecretId=container["secrets"][0]["valueFrom"])["SecretString"]
    # The ALB's URL resolves nowhere on this machine: the local server stands in for its target.
    return HTTPClient(get_settings().api_url, api_key=key)


def _token_secrets(aws: dict[str, Any]) -> list[str]:
    """Names of the run-token secrets still in Secrets Manager."""
    listed = aws["secretsmanager"].list_secrets()["SecretList"]
    return sorted(s["Name"] for s in listed if s["Name"].startswith(SECRET_PREFIX))


def _check_http_path(client: Any, emulator: ECSEmulator, aws: dict[str, Any], store_url: str) -> None:
    """Over HTTP: each child reported with its own per-run token, the worker with its key."""
    store = Orchestrator.create(store_url)
    try:
        actors = {entry["actor"] for entry in store.read_audit(limit=100_000)}
    finally:
        store.dispose()
    launches = {launch["command"][-1]: launch for launch in emulator.launched}
    assert WORKER_KEY_NAME in actors
    for run_id, launch in launches.items():
        assert f"run:{run_id}" in actors, sorted(actors)
        env = launch["env"]
        assert env["FLEETFLOW_API_URL"] == get_settings().api_url
        assert "FLEETFLOW_DATABASE_URL" not in env and "FLEETFLOW_API_KEY" not in env
        # the token travelled in the run's own secret, by ARN, deleted once the run was final
        assert secret_name(run_id) in env[SECRET_ARN_ENV]
    assert _token_secrets(aws) == []


def _check_runs(client: Any, emulator: ECSEmulator, outputs: dict[str, Any], aws: dict[str, Any], pipeline: dict) -> None:
    from fleetflow.results import load_result

    # The parent finished with the model trained in the third container.
    (parent,) = client.read_flow_runs(flow_name="ml-pipeline")
    assert parent.state.type is StateType.COMPLETED
    assert set(pipeline) == {"mse", "bias"} and math.isfinite(pipeline["mse"]) and pipeline["mse"] < 0.1
    assert load_result(parent.state.data["result"]) == pipeline

    children = client.read_flow_runs(parent_flow_run_id=parent.id)
    assert sorted(c.flow_name for c in children) == sorted(EXPECTED_SIZES)
    task_runs = {t.id: t for t in client.read_task_runs(parent.id)}
    launches = {launch["command"][-1]: launch for launch in emulator.launched}
    assert len(emulator.launched) == 3 and set(launches) == {c.id for c in children}
    cluster_name = outputs["cluster_arn"].rsplit("/", 1)[1]
    ecs = aws["ecs"]

    for child in children:
        launch = launches[child.id]
        # linked to the parent through one of its task runs, finished, launched by our worker
        assert child.state.type is StateType.COMPLETED
        # How its result reached the parent: inline JSON in the store, or pickled into the S3
        # results block that register-blocks created from `results_path` (never a local folder:
        # the parent runs elsewhere). preprocess returns tuples, so it is always pickled.
        ref = child.state.data["result"]
        if child.flow_name == "preprocess" or ref["serializer"] == "pickle":
            assert ref["serializer"] == "pickle", ref
            assert ref["storage"] == {"type": "block", "block": "s3/fleetflow-results"}, ref
        else:
            assert ref["serializer"] == "json", ref
        assert task_runs[child.parent_task_run_id].state.type is StateType.COMPLETED
        assert child.worker_name == WORKER_NAME
        # its deployment's size, on the cluster Terraform created, with the example's image
        assert (launch["cpu"], launch["memory"]) == EXPECTED_SIZES[child.flow_name], child.flow_name
        assert launch["cluster"] == outputs["cluster_arn"]
        assert launch["task_arn"].split(":task/", 1)[1].startswith(f"{cluster_name}/")
        assert launch["task_arn"] in (child.infrastructure_pid or "")
        assert launch["command"][-3:] == ["-m", "fleetflow.runner", child.id]
        assert emulator.wait_for_exit(launch["task_arn"]) == 0
        # directly, the store URL came from the Terraform secret, never through the RunTask
        # overrides; over HTTP no database URL reaches the container at all
        if outputs.get("database_url_secret_arn") is not None:
            assert launch["env"]["FLEETFLOW_DATABASE_URL"] == resolved_store_url()
        (task,) = ecs.describe_tasks(cluster=outputs["cluster_arn"], tasks=[launch["task_arn"]])["tasks"]
        override_env = {e["name"] for o in task["overrides"]["containerOverrides"] for e in o.get("environment", [])}
        assert not {"FLEETFLOW_DATABASE_URL", "FLEETFLOW_API_KEY"} & override_env
        assert (task["lastStatus"], task["stoppedReason"]) == ("STOPPED", ESSENTIAL_EXITED)
        definition = ecs.describe_task_definition(taskDefinition=launch["task_definition_arn"])["taskDefinition"]
        (container,) = definition["containerDefinitions"]
        assert container["image"] == outputs["image"]
        expected_secrets = [] if outputs.get("database_url_secret_arn") is None else [
            {"name": "FLEETFLOW_DATABASE_URL", "valueFrom": outputs["database_url_secret_arn"]}]
        assert container.get("secrets", []) == expected_secrets
        assert container["logConfiguration"]["options"]["awslogs-group"] == outputs["log_group_name"]
        assert definition["executionRoleArn"] == outputs["execution_role_arn"]
        assert definition["taskRoleArn"] == outputs["task_role_arn"]
        # it fetched its deployment's bundle from S3 into its own container folder
        digest = client.read_deployment(child.deployment_id).bundle_digest
        assert (Path(launch["cwd"]) / "bundle-cache" / digest).is_dir()
        # and its logs reached the store
        assert client.read_logs(flow_run_id=child.id)


def _check_bundle_in_terraform_bucket(client: Any, aws: dict[str, Any], outputs: dict[str, Any]) -> None:
    """One bundle object (the three deployments share the example folder) under the S3 block's
    prefix (`bucket_path` output, `<bucket>/bundles`) of the bucket Terraform created."""
    bucket, prefix = outputs["bucket_path"].split("/", 1)
    assert bucket == outputs["bucket_name"]
    digests = {client.read_deployment_by_name(name).bundle_digest
               for name in ("fetch-data/fetch", "preprocess/preprocess", "train/train")}
    assert len(digests) == 1
    objects = aws["s3"].list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/").get("Contents", [])
    assert [o["Key"] for o in objects] == [f"{prefix}/{bundle_key(d)}" for d in digests]


def _print_children(client: Any, emulator: ECSEmulator, started: float) -> None:
    """Per child: seconds from the pipeline's start to RunTask, the process start and each state."""
    launches = {launch["command"][-1]: launch for launch in emulator.launched}
    origin = time.time() - (time.monotonic() - started)
    runs = [client.read_flow_run(run_id) for run_id in launches]
    print()
    for run in sorted(runs, key=lambda r: r.created):
        launch = launches[run.id]
        steps = [(s.type.value, s.timestamp.timestamp()) for s in client.read_flow_run_states(run.id)]
        if launch.get("created_at") is not None:
            steps.append(("RunTask", launch["created_at"].timestamp()))
        steps.append(("process", launch["started_at"]))
        text = ", ".join(f"{name} +{at - origin:.2f}s" for name, at in sorted(steps, key=lambda s: s[1]))
        print(f"  {run.flow_name} ({launch['cpu']}/{launch['memory']}): {text}")

