"""``ECSLauncher``: the AWS calls behind ``ECSTask`` (register, run, watch, stop, logs).

One launcher serves every ``ECSTask`` block of a worker, whatever their credentials, regions
and clusters. What it does differently from prefect-aws 0.3 (which made ~7 control-plane calls
per launch and registered + deregistered a task definition on every run):

* **Task definitions are content-addressed and registered once**: the family carries a hash of
  the definition's content (``ecs_requests.build_task_definition``), sizes and every per-run
  value ride in RunTask ``overrides``; a family is looked up once per process
  (DescribeTaskDefinition, compared with ``task_definitions_match``) and registered only when
  absent or different, under an asyncio lock so concurrent launches share one registration.
* **RunTask is idempotent and retried**: ``clientToken`` per (flow run, claim); botocore's own
  retries are off and one tenacity policy (exponential backoff with jitter, bounded) retries
  throttling, 5xx and dropped connections, so "throttled three times, then accepted" is one task.
  ``failures[]`` becomes a :class:`~fleetflow.exceptions.RunTaskFailure` naming the fix.
* **Watching is batched and rate-limited**: the worker asks every 0.1 s; DescribeTasks runs at
  most every ``task_watch_poll_interval`` per cluster, for up to 100 tasks per call, and cached
  statuses are returned in between.
* **VPC lookups are cached** per (credentials, region, VPC): 200 launches, at most 2 EC2 calls.
* **No secret in plain environment overrides**: a password-bearing database URL or an API key
  in the runner's environment must be mapped through the block's ``secrets`` (SSM / Secrets
  Manager), else the launch fails before any AWS call with the fix in the message. The per-run
  token of a launch over HTTP goes in a per-run Secrets Manager secret the container reads by
  ARN, deleted once the launch finished, also by a restarted worker, and swept when its run
  ended unwatched (:mod:`.run_token_secrets`).

Only ``fleetflow.aws`` imports boto3/aiobotocore; this module is imported lazily by
``ECSTask.launcher()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, Sequence

import tenacity
from botocore import xform_name

from ..exceptions import AwsError, ECSConfigError, LaunchError
from ..infrastructure.base import LaunchResult, LaunchStatus
from . import ecs_requests as rq
from . import ecs_watch as watch
from . import run_token_secrets as tokens
from .credentials import AwsCredentials
from .ecs_validation import is_secret_env as _is_secret_env
from .ecs_validation import secret_env_error, validate_ecs_task
from .ecs_logs import LogCopier, StreamCursor, log_stream_for
from .fargate import check_fargate_size

log = logging.getLogger("fleetflow.aws.ecs")

# One retry policy for every launcher call: botocore's retries are switched off (one attempt
# per call) so tenacity's bounded attempts are the only ones.
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
NO_BOTOCORE_RETRIES = {"retries": {"total_max_attempts": 1, "mode": "standard"}}
RETRY_ATTEMPTS = 6
RETRY_WAIT = (0.5, 20.0)  # first wait (s, randomised exponential) and the cap
# ECS is eventually consistent: a task may be absent from DescribeTasks right after RunTask.
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/ecs-api-eventual-consistency.html
MISSING_GRACE_SECONDS = 60.0
STARTED_BY_PREFIX = "fleetflow"
_MEMO_SIZE = 512
DEFAULT_STOP_REASON = "Stopped by fleetflow: the flow run was cancelled or did not start in time"


# --- pure launch-side rules ------------------------------------------------------------------------
def is_secret_env(name: str, value: str | None) -> bool:
    """The worker's own variables: secret by name (keys, tokens) or a URL with a password."""
    return _is_secret_env(name, value, by_suffix=False)


_WORKER_LOCAL = frozenset({"FLEETFLOW_HOME"})


def container_environment(block: Any, env: Mapping[str, str]) -> dict[str, str]:
    """The runner's environment as it may be sent: variables the block maps in ``secrets`` are left
    to ECS (it injects them from SSM / Secrets Manager); a secret with no such mapping is an error."""
    out: dict[str, str] = {}
    for name, value in env.items():
        if name in _WORKER_LOCAL:
            continue  # a path on the worker's machine means nothing inside the container
        if name in (block.secrets or {}) or name in (block.env or {}):
            continue  # ECS injects it / the block's own env replaces or unsets it
        if is_secret_env(name, value):
            raise secret_env_error(name, "the worker's runner environment")
        out[name] = value
    for name, value in (block.env or {}).items():
        if _is_secret_env(name, value):
            raise secret_env_error(name, "the block's env")
    return out


def started_by_for(pool_name: str | None) -> str:
    """``fleetflow/<pool>``: the same for every task of a pool, so ``ListTasks(startedBy=...)`` finds
    them again after a restart. AWS allows 36 letters, digits, '-', '/' and '_'."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", pool_name or "").strip("-")
    if not slug:
        return STARTED_BY_PREFIX
    value = f"{STARTED_BY_PREFIX}/{slug}"
    if len(value) <= rq.MAX_STARTED_BY_CHARS:
        return value
    digest = hashlib.sha256((pool_name or "").encode()).hexdigest()[:8]
    room = rq.MAX_STARTED_BY_CHARS - len(STARTED_BY_PREFIX) - 1 - len(digest) - 1
    return f"{STARTED_BY_PREFIX}/{slug[:room]}-{digest}"


# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Tag.html: letters, digits, spaces, _.:/=+-@
_TAG_UNSAFE = re.compile(r"[^\w .:/=+\-@]")


def run_tags(flow_run: Any) -> dict[str, str]:
    """Per-run tags (the builder adds ``fleetflow:flow-run-id``): find a run's task in the console."""
    values = {
        "fleetflow:flow": getattr(flow_run, "flow_name", None),
        "fleetflow:flow-run-name": getattr(flow_run, "name", None),
        "fleetflow:deployment-id": getattr(flow_run, "deployment_id", None),
        "fleetflow:work-pool": getattr(flow_run, "work_pool_name", None),
    }
    return {k: _TAG_UNSAFE.sub("-", str(v))[: rq.MAX_TAG_VALUE] for k, v in values.items() if v}


def launch_attempt(flow_run: Any) -> int:
    """The ``attempt`` of the idempotency token: the run's recorded launch attempt number (each
    attempt is recorded before RunTask, so a repeat of one attempt gets the task it already
    started); for a run without one, the claim's PENDING timestamp in ms.
    """
    if int(getattr(flow_run, "launch_attempt", 0) or 0) > 0:
        return int(flow_run.launch_attempt)
    state = getattr(flow_run, "state", None)
    stamp = getattr(state, "timestamp", None)
    if stamp is not None:
        return int(stamp.timestamp() * 1000)
    return int(getattr(flow_run, "run_count", 0) or 0) + 1


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def launch_sizes(block: Any, definition: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """cpu/memory a run gets: the block's (sent as overrides), else the task definition's."""
    cpu, memory = rq.override_sizes(block)
    return cpu or _int(definition.get("cpu")), memory or _int(definition.get("memory"))


def credentials_of(block: Any) -> AwsCredentials:
    """The block's credentials, or the default AWS chain."""
    return block.aws_credentials or _DEFAULT_CREDENTIALS


_DEFAULT_CREDENTIALS = AwsCredentials()


def aws_error(operation: str, exc: BaseException) -> AwsError:
    """Wrap a botocore error (``__cause__`` set by the caller's ``raise ... from``)."""
    code = watch.error_code(exc) or type(exc).__name__
    message = str(((getattr(exc, "response", None) or {}).get("Error") or {}).get("Message") or exc)
    hint = ""
    if "AccessDenied" in code or "not authorized" in message:
        hint = f"; the worker's credentials need ecs/ec2/logs permission for {operation} (see docs/aws.md, IAM)"
    return AwsError(f"AWS {operation} failed: {code}: {message}{hint}", operation=operation, code=code)


def _is_aws_failure(exc: BaseException) -> bool:
    return bool(watch.error_code(exc)) or watch.is_retryable(exc)


# --- clients -------------------------------------------------------------------------------------
class _Clients:
    """aiobotocore clients shared per (service, credentials, region), owned by the launcher.

    aiobotocore clients belong to the event loop they were entered on; if the launcher is used
    from a new loop the old clients are dropped (they cannot be closed from another loop).
    """

    def __init__(self, on_client: Callable[[Any], None] | None) -> None:
        self._on_client = on_client
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[tuple[str, str], Any] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._keys: dict[int, tuple[AwsCredentials, str]] = {}
        self._regional: dict[tuple[int, str], tuple[AwsCredentials, AwsCredentials]] = {}

    def in_region(self, creds: AwsCredentials, region: str | None) -> AwsCredentials:
        """``creds`` aimed at ``region`` (a task ARN's region may differ from the block's default)."""
        if not region or region == creds.region_name:
            return creds
        known = self._regional.get((id(creds), region))
        if known is None or known[0] is not creds:
            known = self._regional[(id(creds), region)] = (creds, creds.model_copy(update={"region_name": region}))
            if len(self._regional) > _MEMO_SIZE:
                self._regional.pop(next(iter(self._regional)))
        return known[1]

    def scope(self, creds: AwsCredentials, region: str | None) -> str:
        """A digest naming (credentials, region); memoised per credentials object."""
        creds = self.in_region(creds, region)
        known = self._keys.get(id(creds))
        if known is None or known[0] is not creds:
            known = (creds, creds._cache_key("aiobotocore", "*"))
            self._keys[id(creds)] = known
            if len(self._keys) > _MEMO_SIZE:  # workers load a fresh block (and credentials) per run
                self._keys.pop(next(iter(self._keys)))
        return known[1]

    async def get(self, creds: AwsCredentials, service: str, region: str | None = None) -> Any:
        self._check_loop()
        creds = self.in_region(creds, region)
        key = (service, self.scope(creds, None))
        if key not in self._clients:
            async with self._locks.setdefault(key, asyncio.Lock()):
                if key not in self._clients:
                    client = await self._enter(creds, service)
                    if self._on_client:
                        self._on_client(client)
                    self._clients[key] = client
        return self._clients[key]

    async def _enter(self, creds: AwsCredentials, service: str) -> Any:
        from botocore.exceptions import NoRegionError

        try:
            return await self._stack.enter_async_context(creds.get_async_client(service, config=NO_BOTOCORE_RETRIES))
        except NoRegionError:
            raise ECSConfigError(
                "no AWS region: set aws_credentials.region_name on the ECSTask block, or AWS_DEFAULT_REGION "
                "where the worker runs",
                field="aws_credentials.region_name",
            ) from None

    def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                log.debug("ECS launcher used from a new event loop; dropping %d client(s)", len(self._clients))
            self._loop, self._clients, self._locks = loop, {}, {}
            self._stack = contextlib.AsyncExitStack()

    async def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            await self._stack.aclose()
        self._clients.clear()


@dataclass
class _Definition:
    """A usable task definition: its ARN and content (for container names, sizes, log config)."""

    arn: str
    content: dict[str, Any]


@dataclass
class _Tracked:
    """What the launcher knows about one launch."""

    block: Any
    status: LaunchStatus
    launched_at: float | None = None
    memory: int | None = None
    definition_arn: str | None = None
    logs_checked: bool = False  # stream_output set up (at launch, or on first sight after a restart)
    token_checked: bool = False  # whether its run's token secret is known (at launch, or on first sight)


# --- the launcher ---------------------------------------------------------------------------------
class ECSLauncher:
    """Launch, watch, stop and re-find flow runs as ECS tasks (see the module docstring).

    ``store``: returns the orchestrator client that container logs are written to
    (default ``fleetflow.client.get_client``). ``on_client``: called with every aiobotocore
    client the launcher creates (tests and benchmarks count calls with botocore event hooks).
    ``clock``: the monotonic clock that paces DescribeTasks polls and the missing-task grace
    (default ``time.monotonic``); tests step it so poll pacing is checked without sleeping.
    """

    def __init__(
        self,
        *,
        store: Callable[[], Any] | None = None,
        on_client: Callable[[Any], None] | None = None,
        retry_attempts: int = RETRY_ATTEMPTS,
        retry_wait: tuple[float, float] = RETRY_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._clients = _Clients(on_client)
        self._retry_attempts = retry_attempts
        self._retry_wait = retry_wait
        self._definitions: dict[tuple[str, str], _Definition] = {}
        self._definition_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._subnets: dict[tuple[str, str | None], list[str]] = {}
        self._subnet_locks: dict[tuple[str, str | None], asyncio.Lock] = {}
        self._tracked: dict[str, _Tracked] = {}
        self._run_secrets: dict[str, tuple[AwsCredentials, str]] = {}  # task ARN -> (creds, run id)
        self._sweep_pages: dict[str, str | None] = {}  # credentials scope -> next ListSecrets page
        self._last_poll: dict[tuple[str, str], float] = {}
        self._logs = LogCopier(store or _default_store)

    # ---- AWS call with the one retry policy ----------------------------------------------------
    async def _call(self, client: Any, operation: str, **params: Any) -> dict[str, Any]:
        """``operation`` with tenacity retries on transient errors; botocore errors become AwsError."""
        method = getattr(client, xform_name(operation))
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(watch.is_retryable),
            wait=tenacity.wait_random_exponential(multiplier=self._retry_wait[0], max=self._retry_wait[1]),
            stop=tenacity.stop_after_attempt(self._retry_attempts),
            before_sleep=lambda state: log.info("AWS %s: %s; retrying", operation, state.outcome.exception()),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await method(**params)
        except Exception as exc:
            if _is_aws_failure(exc):
                raise aws_error(operation, exc) from exc
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- launch --------------------------------------------------------------------------------
    async def launch(self, block: Any, flow_run: Any, *, env: dict[str, str], command: list[str]) -> LaunchResult:
        """Start one ECS task for ``flow_run``; the handle is the task ARN.

        ``command`` is the worker's local runner command (its own interpreter path) and means
        nothing inside the image: the container runs ``block.command`` or
        ``python -m fleetflow.runner <flow-run-id>``.
        """
        validate_ecs_task(block)  # again: overrides were merged with model_copy, which skips validators
        token = env.get(tokens.TOKEN_ENV) if tokens.carries_run_token(env, block.secrets) else None
        run_env = container_environment(block, tokens.with_secret_reference(env, "") if token else env)
        creds = credentials_of(block)
        if token:
            run_env.update(tokens.reference_env(await self._store_token(creds, flow_run.id, token), creds))
        ecs = await self._clients.get(creds, "ecs")
        definition = await self._task_definition(block, creds, ecs)
        network = await self._network_configuration(block, creds, ecs.meta.region_name, definition.content)
        request = rq.build_run_task_request(
            block,
            task_definition_arn=definition.arn,
            flow_run_id=flow_run.id,
            env=run_env,
            command=block.command or rq.default_command(flow_run.id),
            network_configuration=network,
            client_token=rq.make_client_token(flow_run.id, launch_attempt(flow_run)),
            started_by=started_by_for(getattr(flow_run, "work_pool_name", None)),
            tags=run_tags(flow_run),
        )
        cpu, memory = launch_sizes(block, definition.content)
        try:
            response = await self._call(ecs, "RunTask", **request)
            task = started_task(response, cluster=request.get("cluster") or "default", cpu=cpu, memory=memory)
        except BaseException:
            if token:
                await self._delete_token(creds, flow_run.id)
            raise
        if token:
            self._run_secrets[task["taskArn"]] = (creds, flow_run.id)
        self._track(task, block, definition, flow_run.id, memory)
        return LaunchResult(handle=task["taskArn"], infrastructure=_summary(block, definition, task, cpu, memory))

    async def _store_token(self, creds: AwsCredentials, flow_run_id: str, token: str) -> str:
        secretsmanager = await self._clients.get(creds, "secretsmanager")
        return await tokens.store_token(self._call, secretsmanager, flow_run_id, token)

    async def _delete_token(self, creds: AwsCredentials, flow_run_id: str) -> None:
        try:
            await tokens.delete_token(self._call, await self._clients.get(creds, "secretsmanager"), flow_run_id)
        except AwsError as exc:  # it expires with its run anyway; say so and go on
            log.warning("could not delete the token secret of run %s: %s", flow_run_id, exc)

    async def _delete_finished_tokens(self, statuses: Mapping[str, LaunchStatus]) -> None:
        """A finished launch's run is final (or crashed): its token secret goes."""
        done = [handle for handle, status in statuses.items() if status.finished and handle in self._run_secrets]
        for handle in done:
            creds, flow_run_id = self._run_secrets.pop(handle)
            await self._delete_token(creds, flow_run_id)

    async def sweep_run_tokens(self, block: Any, ended: Callable[[list[str]], Awaitable[Mapping[str, Any]]],
                               *, limit: int = 50) -> list[str]:  # fmt: skip
        """Delete the token secrets of runs that are final: one page of at most ``limit``
        secrets under the prefix, in ``block``'s account and region (its credentials), per call;
        the next call goes on with the next page. ``ended(run_ids)`` says which of them are final
        in this store, and since when. Returns the runs whose secret went."""
        creds = credentials_of(block)
        secretsmanager = await self._clients.get(creds, "secretsmanager")
        scope = self._clients.scope(creds, None)
        listed, self._sweep_pages[scope] = await tokens.list_token_secrets(
            self._call, secretsmanager, limit=limit, next_token=self._sweep_pages.get(scope))
        run_ids = [tokens.run_of_secret(s["Name"]) or "" for s in listed]
        doomed = tokens.sweepable(listed, await ended(run_ids)) if run_ids else []
        for run_id in doomed:
            await self._delete_token(creds, run_id)
        if doomed:
            log.info("deleted the token secrets of %d final run(s)", len(doomed))
        return doomed

    def _track(self, task: dict, block: Any, definition: _Definition, flow_run_id: str, memory: int | None) -> None:
        arn = task["taskArn"]
        status = watch.status_from_task(task, block.container_name, memory)
        self._tracked[arn] = _Tracked(block, status, self._clock(), memory, definition.arn, logs_checked=True,
                                      token_checked=True)  # fmt: skip
        self._follow_logs(arn, block, definition.content, flow_run_id)

    def _follow_logs(self, arn: str, block: Any, content: Mapping[str, Any], flow_run_id: str | None) -> None:
        if not block.stream_output or not flow_run_id:
            return
        stream = log_stream_for(content, block.container_name, arn)
        if stream is None:
            log.warning("stream_output is on but task %s's container does not log to CloudWatch (awslogs)", arn)
            return
        self._logs.follow(arn, StreamCursor(stream, flow_run_id, block.container_name))

    # ---- task definitions ----------------------------------------------------------------------
    async def _task_definition(self, block: Any, creds: AwsCredentials, ecs: Any) -> _Definition:
        """The definition to run: the user's ARN, or ours (found or registered once per content)."""
        plan = rq.plan_task_definition(block, region=ecs.meta.region_name)
        key = (self._clients.scope(creds, ecs.meta.region_name), plan.arn or plan.family)
        if key not in self._definitions:
            async with self._definition_locks.setdefault(key, asyncio.Lock()):
                if key not in self._definitions:
                    found = await (self._describe_arn(ecs, plan.arn) if plan.arn else self._find_or_register(ecs, plan.request))
                    self._definitions[key] = found
        definition = self._definitions[key]
        if plan.arn:
            _check_user_definition(block, definition)
        return definition

    async def _describe_arn(self, ecs: Any, arn: str) -> _Definition:
        """A user's registered definition: described once, to learn container names and sizes."""
        described = await self._call(ecs, "DescribeTaskDefinition", taskDefinition=arn)
        td = described["taskDefinition"]
        return _Definition(td["taskDefinitionArn"], td)

    async def _find_or_register(self, ecs: Any, wanted: dict[str, Any]) -> _Definition:
        """Reuse the family's active revision when it has our content (e.g. after a restart, or
        registered by another worker); otherwise register. Two processes registering the same
        content at once create two identical revisions: harmless."""
        existing = await self._describe_family(ecs, wanted["family"])
        if existing is not None and rq.task_definitions_match(existing, wanted):
            return _Definition(existing["taskDefinitionArn"], existing)
        registered = await self._call(ecs, "RegisterTaskDefinition", **wanted)
        td = registered["taskDefinition"]
        log.info("registered ECS task definition %s", td["taskDefinitionArn"])
        return _Definition(td["taskDefinitionArn"], td)

    async def _describe_family(self, ecs: Any, family: str) -> dict[str, Any] | None:
        """The latest ACTIVE revision of ``family``, or None. ECS answers an unknown family with a
        ClientException "Unable to describe task definition", not a not-found code."""
        try:
            described = await self._call(ecs, "DescribeTaskDefinition", taskDefinition=family)
        except AwsError as exc:
            if exc.code == "ClientException":
                return None
            raise
        td = described.get("taskDefinition") or {}
        return td if td.get("status", "ACTIVE") == "ACTIVE" else None

    # ---- network -------------------------------------------------------------------------------
    async def _network_configuration(
        self, block: Any, creds: AwsCredentials, region: str, definition: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """awsvpc tasks need subnets: the block's, else the VPC's (``vpc_id`` or the default VPC)."""
        if not rq.needs_network_configuration(block, definition):
            return None
        if block.subnets:
            return rq.build_network_configuration(block)
        return rq.build_network_configuration(block, await self._vpc_subnets(block, creds, region))

    async def _vpc_subnets(self, block: Any, creds: AwsCredentials, region: str) -> list[str]:
        key = (self._clients.scope(creds, region), block.vpc_id)
        if key not in self._subnets:
            async with self._subnet_locks.setdefault(key, asyncio.Lock()):
                if key not in self._subnets:
                    ec2 = await self._clients.get(creds, "ec2", region)
                    self._subnets[key] = await self._discover_subnets(ec2, block.vpc_id, region)
        return self._subnets[key]

    async def _discover_subnets(self, ec2: Any, vpc_id: str | None, region: str) -> list[str]:
        if vpc_id is None:
            vpcs = await self._call(ec2, "DescribeVpcs", Filters=[{"Name": "isDefault", "Values": ["true"]}])
            if not vpcs.get("Vpcs"):
                raise ECSConfigError(
                    f"region {region} has no default VPC; set `vpc_id`, or `subnets` and `security_groups`",
                    field="vpc_id",
                )
            vpc_id = vpcs["Vpcs"][0]["VpcId"]
        found = await self._call(ec2, "DescribeSubnets", Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
        subnets = sorted(s["SubnetId"] for s in found.get("Subnets") or [])
        if not subnets:
            raise ECSConfigError(f"VPC {vpc_id} has no subnets; create some or set `subnets`", field="vpc_id")
        return subnets

    # ---- watch ---------------------------------------------------------------------------------
    async def statuses(self, launches: Sequence[tuple[str, Any]]) -> dict[str, LaunchStatus]:
        """Status of every launch, from at most one DescribeTasks per 100 tasks per cluster per
        ``task_watch_poll_interval``; in between (the worker asks every tick), cached statuses.

        Expects every watched launch on each call (as the worker does): launches left out are
        forgotten. Unknown handles (a restarted worker's) are described on first sight.
        """
        # Forget first: a launch finishing while we poll is tracked but not yet watched.
        self._forget({handle for handle, _ in launches})
        now = self._clock()
        groups: dict[tuple[str, str], list[tuple[str, Any]]] = {}
        for handle, block in launches:
            groups.setdefault(self._group_key(handle, block), []).append((handle, block))
        due = [(key, items) for key, items in groups.items() if self._due(key, items, now)]
        for key, _ in due:
            self._last_poll[key] = now
        outcomes = await asyncio.gather(*(self._poll(items) for _, items in due), return_exceptions=True)
        for (key, items), outcome in zip(due, outcomes):
            if isinstance(outcome, Exception):  # a watch error must not stop the worker's loop
                log.warning("could not check %d ECS task(s) on cluster %s: %s", len(items), key[1], outcome)
                for handle, block in items:
                    self._tracked.setdefault(handle, _Tracked(block, LaunchStatus(handle)))
        found = {handle: self._status(handle) for handle, _ in launches}
        await self._delete_finished_tokens(found)
        return found

    def _group_key(self, handle: str, block: Any) -> tuple[str, str]:
        parsed = watch.parse_task_arn(handle)
        scope = self._clients.scope(credentials_of(block), parsed.region)
        return scope, watch.cluster_of(handle, block.cluster)

    def _due(self, key: tuple[str, str], items: list[tuple[str, Any]], now: float) -> bool:
        if any(handle not in self._tracked for handle, _ in items):
            return True
        interval = min(block.task_watch_poll_interval for _, block in items)
        return now - self._last_poll.get(key, float("-inf")) >= interval

    def _status(self, handle: str) -> LaunchStatus:
        tracked = self._tracked.get(handle)
        return tracked.status if tracked else LaunchStatus(handle)

    def _forget(self, keep: set[str]) -> None:
        for handle in set(self._tracked) - keep:
            del self._tracked[handle]
        self._logs.forget(keep)

    async def _poll(self, items: list[tuple[str, Any]]) -> None:
        handle, block = items[0]
        creds, region = credentials_of(block), watch.parse_task_arn(handle).region
        cluster = watch.cluster_of(handle, block.cluster)
        ecs = await self._clients.get(creds, "ecs", region)
        blocks = dict(items)
        for chunk in watch.chunks(list(blocks)):
            await self._describe_chunk(ecs, cluster, chunk, blocks)

    async def _describe_chunk(self, ecs: Any, cluster: str, chunk: list[str], blocks: dict[str, Any]) -> None:
        try:
            response = await self._call(ecs, "DescribeTasks", cluster=cluster, tasks=chunk, include=["TAGS"])
        except AwsError as exc:
            if exc.code != "ClusterNotFoundException":
                log.warning("DescribeTasks on cluster %s failed, keeping the last statuses: %s", cluster, exc)
                for arn in chunk:  # known from now on: asked again after the poll interval, not every tick
                    self._tracked.setdefault(arn, _Tracked(blocks[arn], LaunchStatus(arn)))
                return
            response = {"failures": [{"arn": a, "reason": f"cluster {cluster} not found"} for a in chunk]}
        names = {arn: blocks[arn].container_name for arn in chunk}
        memory = {arn: self._tracked[arn].memory for arn in chunk if arn in self._tracked}
        statuses = watch.statuses_from_describe(response, chunk, names, memory)
        tasks = {t.get("taskArn"): t for t in response.get("tasks") or []}
        for arn in chunk:
            await self._update(arn, blocks[arn], statuses[arn], tasks.get(arn), ecs)

    async def _update(self, arn: str, block: Any, status: LaunchStatus, task: dict | None, ecs: Any) -> None:
        tracked = self._tracked.get(arn)
        if status.missing and tracked and tracked.launched_at and self._clock() - tracked.launched_at < MISSING_GRACE_SECONDS:
            return  # not visible yet (eventual consistency), not gone
        if tracked is None:
            tracked = self._tracked[arn] = _Tracked(block, status)
        if task and not tracked.definition_arn:
            tracked.definition_arn = task.get("taskDefinitionArn")
        if task and not tracked.token_checked:  # first sight of a task launched before a restart
            tracked.token_checked = True
            if run_id := tokens.token_run_of_task(task, watch.task_flow_run_id(task)):
                self._run_secrets.setdefault(arn, (credentials_of(block), run_id))
        if task and not tracked.logs_checked:
            tracked.logs_checked = True
            await self._reattach_logs(arn, block, task, ecs)
        was_finished, tracked.status = tracked.status.finished, status
        if arn in self._logs.cursors and (status.started or status.finished):
            await self._copy_logs(arn, block, final=status.finished)
        if status.finished and not was_finished and block.auto_deregister_task_definition:
            await self._deregister_if_unused(ecs, tracked.definition_arn, arn)

    # ---- logs ----------------------------------------------------------------------------------
    async def _reattach_logs(self, arn: str, block: Any, task: dict | None, ecs: Any) -> None:
        """After a restart: find the stream from the task's definition (described once)."""
        if not block.stream_output or not task or not task.get("taskDefinitionArn"):
            return
        try:
            definition = await self._definition_by_arn(ecs, block, task["taskDefinitionArn"])
        except AwsError as exc:
            log.warning("cannot follow the logs of %s: %s", arn, exc)
            return
        self._follow_logs(arn, block, definition.content, watch.task_flow_run_id(task))

    async def _definition_by_arn(self, ecs: Any, block: Any, arn: str) -> _Definition:
        key = (self._clients.scope(credentials_of(block), ecs.meta.region_name), arn)
        known = self._definitions.get(key) or next((d for d in self._definitions.values() if d.arn == arn), None)
        if known is None:
            known = self._definitions[key] = await self._describe_arn(ecs, arn)
        return known

    async def _copy_logs(self, arn: str, block: Any, *, final: bool) -> None:
        cursor = self._logs.cursors[arn]
        logs = await self._clients.get(credentials_of(block), "logs", cursor.stream.region)

        async def call(operation: str, **params: Any) -> dict:
            return await self._call(logs, operation, **params)

        await self._logs.copy(arn, call, final=final)

    # ---- auto-deregister -----------------------------------------------------------------------
    async def _deregister_if_unused(self, ecs: Any, definition_arn: str | None, finished: str) -> None:
        """``auto_deregister_task_definition``: only our own definitions, once no watched task uses it."""
        family = (definition_arn or "").rsplit("/", 1)[-1]
        if not definition_arn or not family.startswith(f"{rq.FAMILY_PREFIX}-"):
            return
        in_use = [h for h, t in self._tracked.items() if h != finished and t.definition_arn == definition_arn and not t.status.finished]
        if in_use:
            return
        try:
            await self._call(ecs, "DeregisterTaskDefinition", taskDefinition=definition_arn)
        except AwsError as exc:
            log.warning("could not deregister %s: %s", definition_arn, exc)
            return
        for key in [k for k, d in self._definitions.items() if d.arn == definition_arn]:
            del self._definitions[key]

    # ---- kill / find / close -------------------------------------------------------------------
    async def kill(self, handle: str, block: Any, *, grace_seconds: float = 10.0, reason: str | None = None) -> None:
        """StopTask with a reason. ECS sends SIGTERM, then SIGKILL after the container's
        ``stopTimeout`` (default 30 s; a task definition setting), so ``grace_seconds`` is not
        used. A task ECS no longer knows is already stopped: not an error."""
        ecs = await self._clients.get(credentials_of(block), "ecs", watch.parse_task_arn(handle).region)
        cluster = watch.cluster_of(handle, block.cluster)
        try:
            await self._call(ecs, "StopTask", cluster=cluster, task=handle, reason=(reason or DEFAULT_STOP_REASON)[:255])
        except AwsError as exc:
            if exc.code in ("InvalidParameterException", "ClusterNotFoundException") and "not found" in str(exc).lower():
                return
            raise

    async def find_launch(self, block: Any, flow_run: Any) -> str | None:
        """The task a previous worker started for ``flow_run`` but never recorded, if any."""
        found = await self.find_tasks(block, started_by_for(flow_run.work_pool_name), flow_run_id=flow_run.id)
        return found[0].arn if found else None

    async def find_tasks(self, block: Any, started_by: str, *, flow_run_id: str | None = None) -> list[watch.FoundTask]:
        """Tasks of ``block``'s cluster started with ``started_by`` (see :func:`started_by_for`),
        RUNNING and recently STOPPED, with the flow run each was launched for.

        For a restarted worker that finds a run with no stored handle (it stopped between
        RunTask and storing the ARN): pass ``flow_run_id`` to get that run's task, if any.
        """
        ecs = await self._clients.get(credentials_of(block), "ecs")
        cluster = block.cluster or "default"
        arns: list[str] = []
        for desired in ("RUNNING", "STOPPED"):
            arns += [a for a in await self._list_tasks(ecs, cluster, started_by, desired) if a not in arns]
        found: list[watch.FoundTask] = []
        for chunk in watch.chunks(arns):
            described = await self._call(ecs, "DescribeTasks", cluster=cluster, tasks=chunk, include=["TAGS"])
            found += [watch.found_task(t) for t in described.get("tasks") or []]
        return [t for t in found if flow_run_id is None or t.flow_run_id == str(flow_run_id)]

    async def _list_tasks(self, ecs: Any, cluster: str, started_by: str, desired: str) -> list[str]:
        arns: list[str] = []
        params = {"cluster": cluster, "startedBy": started_by, "desiredStatus": desired, "maxResults": 100}
        while True:
            page = await self._call(ecs, "ListTasks", **params)
            arns += page.get("taskArns") or []
            if not page.get("nextToken"):
                return arns
            params["nextToken"] = page["nextToken"]

    async def close(self) -> None:
        await self._clients.close()


# --- helpers -------------------------------------------------------------------------------------
def _default_store() -> Any:
    from ..client import get_client

    return get_client()


def started_task(response: Mapping[str, Any], *, cluster: str, cpu: Any, memory: Any) -> dict[str, Any]:
    """The one task RunTask started, or a RunTaskFailure naming why it started none."""
    tasks = response.get("tasks") or []
    if tasks:
        return tasks[0]
    failures = response.get("failures") or []
    if failures:
        raise watch.run_task_failure(failures, cluster=cluster, cpu=cpu, memory=memory)
    raise LaunchError("RunTask returned neither a task nor a failure; check the cluster in the ECS console")


def _check_user_definition(block: Any, definition: _Definition) -> None:
    """A registered ``task_definition_arn`` must have the flow container, and with Fargate the
    sizes it ends up with (block's overrides over its own) must be a valid pair."""
    td = definition.content
    names = [c.get("name") for c in td.get("containerDefinitions") or []]
    if block.container_name not in names:
        raise ECSConfigError(
            f"task definition {definition.arn} has no container named {block.container_name!r} (it has: "
            f"{', '.join(map(str, names)) or 'none'}); set container_name to the container that runs the flow",
            field="container_name",
        )
    if rq.uses_fargate(block) and (block.cpu or block.memory):
        cpu, memory = launch_sizes(block, td)
        if cpu and memory:
            check_fargate_size(cpu, memory)


def _summary(block: Any, definition: _Definition, task: Mapping[str, Any], cpu: Any, memory: Any) -> dict[str, Any]:
    """The run record's infrastructure: kind, size, cluster, definition, launch type, region."""
    parsed = watch.parse_task_arn(task["taskArn"])
    return {
        **block.summary(),
        "cpu": cpu,
        "memory": memory,
        "cluster": parsed.cluster or block.cluster or "default",
        "region": parsed.region,
        "task_definition_arn": definition.arn,
        "task_arn": task["taskArn"],
    }
