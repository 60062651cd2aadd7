"""A test-side ECS emulator: runs the containers of tasks launched on moto as local processes.

moto's ECS records tasks but never runs anything. This emulator closes the loop for
end-to-end tests, talking to moto only through its public HTTP API (a plain boto3 client
with ``endpoint_url``; nothing in moto is patched)::

    with ECSEmulator(moto.url, "us-east-1") as emulator:
        ...  # anything that calls RunTask on moto
        emulator.wait_for_exit(task_arn)
        assert emulator.exit_codes[task_arn] == 0

Every ``poll_interval`` seconds a background thread lists the RUNNING tasks of every cluster
(ListClusters, ListTasks, one DescribeTasks per 100 tasks) and, for each task it has not
started yet, runs each container's command as a local process with the environment ECS
would give it:

* the host basics (PATH with this interpreter's folder first, so ``python`` is the test's
  Python; PYTHONPATH, VIRTUAL_ENV, HOME, locale...), never the host's ``FLEETFLOW_*``;
* dummy AWS keys, the region and ``AWS_ENDPOINT_URL`` pointing at moto: what the task role and
  the network give a real container (botocore, aiobotocore and s3fs all honour the variable,
  https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html). With
  ``endpoint_env=False`` the variable is left out, so a container reaches moto only where its
  own configuration says so (e.g. a storage block's ``endpoint_url``). With
  ``isolated_home=True`` HOME is the container's own working folder instead of the host's, so
  nothing a task writes under ``~`` is visible to another task or to the test;
* the task definition's container ``environment``, then its ``secrets`` resolved from moto's
  SSM Parameter Store / Secrets Manager (what ECS does with the execution role,
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/specifying-sensitive-data.html),
  then RunTask ``overrides.containerOverrides[].environment`` on top;
* ``entryPoint`` + ``command`` (the override's ``command`` replaces the definition's).

When an essential container exits, the others get SIGTERM, the emulator calls StopTask with
ECS's reason ``Essential container in task exited`` and records the exit code in
``exit_codes`` (moto keeps none). A task stopped by someone else (the worker cancelling it)
gets SIGTERM, then SIGKILL after ``stop_grace_seconds``, like ECS's ``stopTimeout``.

moto's task lifecycle: a task is born RUNNING and, under moto's default transition for
``ecs::task`` (``{"progression": "manual", "times": 1}``), moves one step towards STOPPED
(RUNNING -> DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED) on every DescribeTasks that
names it; ``{"progression": "immediate"}`` would report it STOPPED at once. Neither is what a
container does, so :meth:`ECSEmulator.start` sets ``manual`` with a huge ``times`` (the task
stays RUNNING until StopTask) through ``/moto-api/state-manager/set-transition``, and
:meth:`ECSEmulator.stop` unsets it again. See
https://docs.getmoto.org/en/latest/docs/configuration/state_transition/index.html and
``moto/ecs/models.py`` (``Task.__init__`` transitions, ``describe_tasks`` -> ``advance()``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waiting import scaled

log = logging.getLogger("ecs_emulator")

ESSENTIAL_EXITED = "Essential container in task exited"
TASK_MODEL = "ecs::task"
# "manual" advances a task one state per `times` DescribeTasks; this many never happens.
HOLD_RUNNING = {"progression": "manual", "times": 10**12}
DUMMY_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# What a container needs from the host to run this interpreter; everything else is ECS's.
PASSTHROUGH_ENV = (
    "PYTHONPATH", "VIRTUAL_ENV", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ",
    "SYSTEMROOT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PYTHONDONTWRITEBYTECODE",
)


@dataclass
class _Container:
    name: str
    essential: bool
    process: subprocess.Popen
    log_path: Path
    cwd: Path


@dataclass
class _Task:
    arn: str
    cluster: str
    containers: list[_Container] = field(default_factory=list)
    stopping_since: float | None = None  # set when moto says someone else stopped the task


class ECSEmulator:
    """Runs the containers of tasks RUNNING on a moto server as local processes.

    Attributes for assertions (all keyed or listed in launch order):

    * ``launched``: one dict per container started: ``task_arn``, ``cluster``, ``container``,
      ``task_definition_arn``, ``cpu``/``memory`` (the RunTask task-level overrides, falling
      back to the task definition's, as strings like ECS reports them),
      ``container_cpu``/``container_memory`` (container override, else definition), ``env``
      (the effective environment ECS would give the container, without the host basics),
      ``command`` (entryPoint + command), ``started_by``, ``tags``, ``created_at`` (moto's),
      ``started_at`` (epoch seconds), ``pid`` and ``cwd`` (the container's own empty working
      folder, like a fresh container filesystem);
    * ``exit_codes[task_arn]``: exit code of the essential container that ended the task;
    * ``container_exit_codes[task_arn][container]``: every container's exit code;
    * ``errors``: what went wrong inside the emulator (it never raises from its thread);
      ``raise_errors()`` re-raises the first one in the test.
    """

    def __init__(self, endpoint_url: str, region: str = "us-east-1", *, poll_interval: float = 0.1,
                 stop_grace_seconds: float = 5.0, extra_env: dict[str, str] | None = None,
                 passthrough_env: tuple[str, ...] = (), endpoint_env: bool = True,
                 isolated_home: bool = False) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self.poll_interval = poll_interval
        self.stop_grace_seconds = stop_grace_seconds
        self.extra_env = dict(extra_env or {})
        self.passthrough_env = PASSTHROUGH_ENV + tuple(passthrough_env)
        self.endpoint_env = endpoint_env
        self.isolated_home = isolated_home
        self.launched: list[dict[str, Any]] = []
        self.exit_codes: dict[str, int] = {}
        self.container_exit_codes: dict[str, dict[str, int]] = {}
        self.errors: list[BaseException] = []
        self._tasks: dict[str, _Task] = {}
        self._seen: set[str] = set()
        self._task_definitions: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._workdir: Path | None = None
        self._clients: dict[str, Any] = {}
        self.metadata: Any = None  # the task metadata endpoint v4 (tests/ecs_metadata.py), while started

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> "ECSEmulator":
        from ecs_metadata import TaskMetadataServer

        self._workdir = Path(tempfile.mkdtemp(prefix="ecs-emulator-"))
        self.metadata = TaskMetadataServer(self.region).start()
        self._moto_api("set-transition", {"model_name": TASK_MODEL, "transition": HOLD_RUNNING})
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ecs-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling, end every process still running, restore moto's default transition."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        for task in list(self._tasks.values()):
            self._terminate(task, grace=0.0 if task.stopping_since else 2.0)
            self._finish(task, call_stop_task=task.stopping_since is None, reason="ECS emulator stopped")
        if self.metadata is not None:
            self.metadata.stop()
            self.metadata = None
        try:
            self._moto_api("unset-transition", {"model_name": TASK_MODEL})
        except OSError as exc:  # the server may already be gone at teardown
            log.debug("could not unset the ecs::task transition: %s", exc)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> "ECSEmulator":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # ---- waiting and inspection (for tests) ------------------------------------------------
    def wait_for_exit(self, task_arn: str, timeout: float = 60.0) -> int:
        """Block until the emulated task ``task_arn`` has ended; return its exit code.
        The deadline scales with ``FLEETFLOW_TEST_TIMEOUT_SCALE`` (see tests/waiting.py)."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        with self._changed:
            while task_arn not in self.exit_codes:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    raise TimeoutError(f"emulated task {task_arn} did not exit within {timeout}s; {self._summary()}")
                self._changed.wait(min(left, 0.5))
            return self.exit_codes[task_arn]

    def wait_for_launches(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` containers have been started; return ``launched``."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.launched) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"only {len(self.launched)} of {count} containers started; {self._summary()}")
                self._changed.wait(min(left, 0.5))
            return list(self.launched)

    def output(self, task_arn: str, container: str | None = None) -> str:
        """Combined stdout/stderr of a task's container(s) so far (debugging, assertions)."""
        texts = []
        for path in sorted((self._workdir or Path("/nonexistent")).glob(f"{_task_id(task_arn)}--*.log")):
            if container is None or path.name == f"{_task_id(task_arn)}--{container}.log":
                texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)

    def raise_errors(self) -> None:
        if self.errors:
            raise AssertionError(f"the ECS emulator hit {len(self.errors)} error(s)") from self.errors[0]

    def _summary(self) -> str:
        errors = "; ".join(f"{type(e).__name__}: {e}" for e in self.errors[:3]) or "none"
        return f"launched={len(self.launched)}, running={list(self._tasks)}, errors={errors}"

    # ---- AWS access ------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A boto3 client on moto with dummy keys (used from the emulator thread only)."""
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(
                service, endpoint_url=self.endpoint_url, region_name=self.region,
                aws_access_key_id=DUMMY_KEYS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=DUMMY_KEYS["AWS_SECRET_ACCESS_KEY"],
            )
        return self._clients[service]

    def _moto_api(self, action: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/state-manager/{action}", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=scaled(60)) as response:
            response.read()

    # ---- the loop --------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll_once()
            except Exception as exc:  # never die silently: tests read `errors`
                log.exception("ECS emulator poll failed")
                self._record_error(exc)
            self._stop.wait(self.poll_interval)

    def _record_error(self, exc: BaseException) -> None:
        with self._changed:
            self.errors.append(exc)
            self._changed.notify_all()

    def _poll_once(self) -> None:
        ecs = self.client("ecs")
        wanted: dict[str, set[str]] = {task.cluster: set() for task in self._tasks.values()}
        for task in self._tasks.values():
            wanted[task.cluster].add(task.arn)
        for cluster in self._list_clusters(ecs):
            arns = self._list_running_tasks(ecs, cluster)
            wanted.setdefault(cluster, set()).update(a for a in arns if a not in self._seen)
        for cluster, arns in wanted.items():
            for described in self._describe(ecs, cluster, sorted(arns)):
                self._on_task(cluster, described)
        for task in list(self._tasks.values()):
            self._check_processes(task)

    @staticmethod
    def _list_clusters(ecs: Any) -> list[str]:
        return [arn for page in ecs.get_paginator("list_clusters").paginate() for arn in page["clusterArns"]]

    @staticmethod
    def _list_running_tasks(ecs: Any, cluster: str) -> list[str]:
        pages = ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus="RUNNING")
        return [arn for page in pages for arn in page["taskArns"]]

    @staticmethod
    def _describe(ecs: Any, cluster: str, arns: list[str]) -> list[dict[str, Any]]:
        """One DescribeTasks per 100 tasks (the API's limit)."""
        found = []
        for start in range(0, len(arns), 100):
            found += ecs.describe_tasks(cluster=cluster, tasks=arns[start:start + 100])["tasks"]
        return found

    def _on_task(self, cluster: str, described: dict[str, Any]) -> None:
        arn = described["taskArn"]
        stopped = described.get("desiredStatus") == "STOPPED" or described.get("lastStatus") == "STOPPED"
        task = self._tasks.get(arn)
        if task is not None:
            if stopped and task.stopping_since is None:
                task.stopping_since = time.monotonic()
                self._signal(task, signal.SIGTERM)
            return
        if arn in self._seen or stopped or described.get("lastStatus") != "RUNNING":
            return
        self._seen.add(arn)
        try:
            self._start_task(cluster, described)
        except Exception as exc:
            self._record_error(exc)
            self._stop_on_moto(cluster, arn, f"ECS emulator could not start the task: {type(exc).__name__}: {exc}")
            with self._changed:
                self.exit_codes[arn] = -1
                self._changed.notify_all()

    # ---- starting a task -------------------------------------------------------------------
    def _task_definition(self, arn: str) -> dict[str, Any]:
        if arn not in self._task_definitions:
            self._task_definitions[arn] = self.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
        return self._task_definitions[arn]

    def _start_task(self, cluster: str, described: dict[str, Any]) -> None:
        td = self._task_definition(described["taskDefinitionArn"])
        overrides = described.get("overrides") or {}
        by_name = {c.get("name"): c for c in overrides.get("containerOverrides") or []}
        task = _Task(arn=described["taskArn"], cluster=cluster)
        for definition in td.get("containerDefinitions") or []:
            spec = self._container_spec(definition, by_name.get(definition["name"]) or {})
            if not spec["command"]:
                raise RuntimeError(
                    f"container {definition['name']!r} has no entryPoint/command; the emulator cannot run an "
                    "image's default command"
                )
            container = self._spawn(task.arn, definition, spec)
            if self.metadata is not None:  # task-level size, as ECS reports it in the metadata's Limits
                self.metadata.register(_task_id(task.arn), container.process.pid, cpu=overrides.get("cpu") or td.get("cpu"),
                                       memory=overrides.get("memory") or td.get("memory"))
            task.containers.append(container)
            self._record_launch(described, td, definition, by_name.get(definition["name"]) or {}, spec, container)
        with self._changed:
            self._tasks[task.arn] = task
            self._changed.notify_all()

    def _container_spec(self, definition: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
        env = {e["name"]: e["value"] for e in definition.get("environment") or []}
        env.update(self._resolve_secrets(definition.get("secrets") or []))
        env.update({e["name"]: e["value"] for e in override.get("environment") or []})
        command = override.get("command") or definition.get("command") or []
        return {"env": env, "command": [*(definition.get("entryPoint") or []), *command]}

    def _record_launch(self, described: dict[str, Any], td: dict[str, Any], definition: dict[str, Any],
                       override: dict[str, Any], spec: dict[str, Any], container: _Container) -> None:
        overrides = described.get("overrides") or {}
        record = {
            "task_arn": described["taskArn"],
            "cluster": described.get("clusterArn"),
            "container": definition["name"],
            "task_definition_arn": described["taskDefinitionArn"],
            "cpu": str(overrides.get("cpu") or td.get("cpu") or ""),
            "memory": str(overrides.get("memory") or td.get("memory") or ""),
            "container_cpu": override.get("cpu", definition.get("cpu")),
            "container_memory": override.get("memory", definition.get("memory")),
            "env": dict(spec["env"]),
            "command": list(spec["command"]),
            "started_by": described.get("startedBy"),
            "tags": {t["key"]: t["value"] for t in described.get("tags") or []},
            "created_at": described.get("createdAt"),  # RunTask time as moto reports it
            "started_at": time.time(),  # when the emulator started the process (epoch seconds)
            "pid": container.process.pid,
            "cwd": str(container.cwd),
        }
        with self._changed:
            self.launched.append(record)
            self._changed.notify_all()

    def _resolve_secrets(self, secrets: list[dict[str, str]]) -> dict[str, str]:
        return {item["name"]: self._secret_value(item["valueFrom"]) for item in secrets}

    def _secret_value(self, value_from: str) -> str:
        """SSM parameter (name or ARN) or Secrets Manager secret ARN, with ECS's
        ``arn:...:secret:name:json-key:version-stage:version-id`` suffixes."""
        if value_from.startswith("arn:") and ":secretsmanager:" in value_from:
            return self._secrets_manager_value(value_from)
        name = value_from
        if value_from.startswith("arn:") and ":parameter/" in value_from:
            # ECS: a parameter ARN names the parameter "/a/b" for paths, "name" otherwise.
            rest = value_from.split(":parameter/", 1)[1]
            name = f"/{rest}" if "/" in rest else rest
        ssm = self.client("ssm")
        return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]

    def _secrets_manager_value(self, value_from: str) -> str:
        parts = value_from.split(":")
        secret_id = ":".join(parts[:7])
        json_key, stage, version = (parts[7:] + ["", "", ""])[:3]
        kwargs: dict[str, str] = {"SecretId": secret_id}
        if stage:
            kwargs["VersionStage"] = stage
        if version:
            kwargs["VersionId"] = version
        value = self.client("secretsmanager").get_secret_value(**kwargs)["SecretString"]
        return str(json.loads(value)[json_key]) if json_key else value

    def _base_env(self) -> dict[str, str]:
        env = {name: os.environ[name] for name in self.passthrough_env if name in os.environ}
        bin_dir = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", os.defpath)])
        env.update(DUMMY_KEYS)
        env.update({"AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region})
        if self.endpoint_env:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        # Keep a container away from the developer's ~/.aws, as a real container would be.
        env.update({"AWS_CONFIG_FILE": "/nonexistent/aws-config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials"})
        env.update(self.extra_env)
        return env

    def _spawn(self, task_arn: str, definition: dict[str, Any], spec: dict[str, Any]) -> _Container:
        assert self._workdir is not None
        name = definition["name"]
        cwd = self._workdir / f"{_task_id(task_arn)}--{name}"
        cwd.mkdir(parents=True, exist_ok=True)
        log_path = self._workdir / f"{_task_id(task_arn)}--{name}.log"
        env = self._base_env()
        if self.isolated_home:
            # A fresh container has its own home: nothing written under ~ (fleetflow's default
            # FLEETFLOW_HOME, its local results) is visible to another task or to the host.
            env["HOME"] = str(cwd)
        env.update(spec["env"])
        if self.metadata is not None:
            env["ECS_CONTAINER_METADATA_URI_V4"] = f"{self.metadata.url}/{_task_id(task_arn)}"
        with open(log_path, "wb") as out:
            # Own session: a stop signals the container's whole process group, nothing else.
            process = subprocess.Popen(
                spec["command"], env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        log.info("started %s/%s as pid %s: %s", _task_id(task_arn), name, process.pid, spec["command"])
        return _Container(name, bool(definition.get("essential", True)), process, log_path, cwd)

    # ---- watching and stopping ------------------------------------------------------------
    def _check_processes(self, task: _Task) -> None:
        if task.stopping_since is not None:
            if all(c.process.poll() is not None for c in task.containers):
                self._finish(task, call_stop_task=False)
            elif time.monotonic() - task.stopping_since > self.stop_grace_seconds:
                self._signal(task, signal.SIGKILL)
            return
        exited = next((c for c in task.containers if c.essential and c.process.poll() is not None), None)
        if exited is not None:
            self._terminate(task, grace=self.stop_grace_seconds)
            self._finish(task, call_stop_task=True, ended_by=exited)

    def _signal(self, task: _Task, sig: int) -> None:
        for container in task.containers:
            if container.process.poll() is None:
                try:
                    os.killpg(container.process.pid, sig)
                except ProcessLookupError:
                    pass

    def _terminate(self, task: _Task, grace: float) -> None:
        """SIGTERM every live container of ``task``, SIGKILL what is left after ``grace``."""
        self._signal(task, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for container in task.containers:
            try:
                container.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self._signal(task, signal.SIGKILL)
        for container in task.containers:
            container.process.wait()

    def _finish(self, task: _Task, *, call_stop_task: bool, ended_by: _Container | None = None,
                reason: str = ESSENTIAL_EXITED) -> None:
        codes = {c.name: c.process.wait() for c in task.containers}
        first = ended_by or next((c for c in task.containers if c.essential), None)
        code = codes[first.name] if first else -1
        if call_stop_task:
            self._stop_on_moto(task.cluster, task.arn, reason)
        with self._changed:
            self._tasks.pop(task.arn, None)
            self.container_exit_codes[task.arn] = codes
            self.exit_codes[task.arn] = code
            self._changed.notify_all()
        log.info("task %s ended with exit code %s", _task_id(task.arn), code)

    def _stop_on_moto(self, cluster: str, arn: str, reason: str) -> None:
        try:
            self.client("ecs").stop_task(cluster=cluster, task=arn, reason=reason)
        except Exception as exc:
            self._record_error(exc)


def _task_id(task_arn: str) -> str:
    return task_arn.rsplit("/", 1)[-1]
