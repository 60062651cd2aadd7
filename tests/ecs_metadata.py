"""A test-side ECS task metadata endpoint v4 for the ECS emulator's containers.

Each container the emulator starts gets ``ECS_CONTAINER_METADATA_URI_V4=http://127.0.0.1:<port>/<task id>``
(as ECS injects it, https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v4-fargate.html);
``/task`` answers the task's Limits, PullStartedAt, AvailabilityZone and LaunchType, and
``/task/stats`` Docker stats whose ``memory_stats.usage`` is the container process tree's *real*
resident memory, read from /proc at each request (what a cgroup v2 host reports; no max_usage).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss_bytes(root: int) -> int:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    children.setdefault(int(fh.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, IndexError):
                continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(children.get(pid, []))
    return total


class TaskMetadataServer:
    """``register(task_id, pid, cpu, memory)`` once the container runs; ``url`` for its env."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self._tasks: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = server.answer(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body if body is not None else {"error": "unknown task"}).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="ecs-metadata", daemon=True)

    def start(self) -> "TaskMetadataServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def register(self, task_id: str, pid: int, *, cpu: str | None, memory: str | None, launch_type: str = "FARGATE") -> None:
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        with self._lock:
            self._tasks[task_id] = {"pid": pid, "cpu": cpu, "memory": memory, "pulled": now, "launch_type": launch_type}

    def answer(self, path: str) -> Any:
        task_id, _, rest = path.strip("/").partition("/")
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            return None
        if rest == "task":
            limits = {k: v for k, v in (("CPU", int(task["cpu"]) / 1024 if task["cpu"] else None),
                                        ("Memory", int(task["memory"]) if task["memory"] else None)) if v}
            return {"TaskARN": task_id, "Limits": limits, "PullStartedAt": task["pulled"],
                    "AvailabilityZone": f"{self.region}a", "LaunchType": task["launch_type"]}
        if rest == "task/stats":
            return {task_id: {"memory_stats": {"usage": _tree_rss_bytes(task["pid"])}}}
        return {"DockerId": task_id}
