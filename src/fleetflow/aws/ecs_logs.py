"""Copy a task's CloudWatch output into the flow run's logs (``stream_output=True``).

The awslogs driver names a task's stream ``<awslogs-stream-prefix>/<container name>/<task id>``
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html), so the stream
is computed from the task definition's log configuration and the task ARN: no DescribeLogStreams.

The stream appears only once the container writes, so ``ResourceNotFoundException`` means
"not yet", not an error. A task's stream is read on every watch poll while it runs and once
more when it is seen STOPPED, which picks up the tail written just before it stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from ..orchestrator.schemas import LogRecord
from .ecs_watch import parse_task_arn
from .ecs_requests import find_container

log = logging.getLogger("fleetflow.aws.ecs")

MAX_PAGES_PER_POLL = 10  # GetLogEvents returns up to 10,000 events / 1 MB per page


@dataclass(frozen=True)
class LogStream:
    """Where one task's flow container writes: group, stream and region."""

    group: str
    stream: str
    region: str | None


def log_stream_for(task_definition: Mapping[str, Any], container_name: str, task_arn: str) -> LogStream | None:
    """The CloudWatch stream of ``container_name`` in a task, or None when it does not log there."""
    container = find_container(task_definition.get("containerDefinitions") or [], container_name) or {}
    config = container.get("logConfiguration") or {}
    options = config.get("options") or {}
    if config.get("logDriver") != "awslogs" or not options.get("awslogs-group"):
        return None
    prefix = options.get("awslogs-stream-prefix")
    if not prefix:  # without a prefix the stream is named by the Docker container id, unknown here
        return None
    task_id = parse_task_arn(task_arn).task_id
    return LogStream(options["awslogs-group"], f"{prefix}/{container_name}/{task_id}", options.get("awslogs-region"))


def log_records(events: list[Mapping[str, Any]], flow_run_id: str, container_name: str) -> list[LogRecord]:
    """GetLogEvents events as run log records (level INFO: the container's stdout/stderr)."""
    return [
        LogRecord(
            flow_run_id=flow_run_id,
            level=logging.INFO,
            name=f"ecs.{container_name}",
            message=str(event.get("message", "")).rstrip("\n"),
            timestamp=dt.datetime.fromtimestamp(int(event.get("timestamp") or 0) / 1000, tz=dt.timezone.utc),
        )
        for event in events
    ]


@dataclass
class StreamCursor:
    """Reading position in one task's stream."""

    stream: LogStream
    flow_run_id: str
    container_name: str
    token: str | None = None
    done: bool = False
    lines: int = field(default=0)


async def read_new_events(call: Callable[..., Awaitable[dict]], cursor: StreamCursor) -> list[dict[str, Any]]:
    """Events written since the last read; [] when the stream does not exist yet.

    GetLogEvents signals the end of a stream by returning the token it was given
    (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html).
    ``call(operation, **params)`` is the launcher's retrying call.
    """
    events: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES_PER_POLL):
        params = {"logGroupName": cursor.stream.group, "logStreamName": cursor.stream.stream, "startFromHead": True}
        if cursor.token:
            params["nextToken"] = cursor.token
        try:
            page = await call("GetLogEvents", **params)
        except Exception as exc:  # noqa: BLE001 - checked below; anything else propagates
            if getattr(exc, "code", "") == "ResourceNotFoundException":
                return events  # the container has not written yet: try again next poll
            raise
        events.extend(page.get("events") or [])
        token = page.get("nextForwardToken")
        if not token or token == cursor.token:
            break
        cursor.token = token
    return events


class LogCopier:
    """Reads the streams of watched tasks and writes them to the run logs.

    ``store`` is a callable returning the orchestrator client (``fleetflow.client.get_client``
    by default), looked up at write time so tests and workers can swap stores.
    """

    def __init__(self, store: Callable[[], Any]) -> None:
        self._store = store
        self.cursors: dict[str, StreamCursor] = {}

    def follow(self, handle: str, cursor: StreamCursor) -> None:
        self.cursors.setdefault(handle, cursor)

    async def copy(self, handle: str, call: Callable[..., Awaitable[dict]], *, final: bool) -> int:
        """Copy new lines of ``handle``'s stream; ``final`` (task STOPPED) reads the tail and stops following."""
        cursor = self.cursors.get(handle)
        if cursor is None or cursor.done:
            return 0
        try:
            events = await read_new_events(call, cursor)
        except Exception as exc:  # noqa: BLE001 - logs are best effort; the run's state is not
            log.warning("could not read CloudWatch logs of %s: %s", handle, exc)
            events = []
        if events:
            self._store().write_logs(log_records(events, cursor.flow_run_id, cursor.container_name))
            cursor.lines += len(events)
        if final:
            cursor.done = True
            self.cursors.pop(handle, None)
        return len(events)

    def forget(self, keep: set[str]) -> None:
        """Stop following handles no longer watched."""
        for handle in set(self.cursors) - keep:
            self.cursors.pop(handle, None)
