"""View models: pure functions from store records to what a template shows.

Nothing here does I/O; the routes read the store and hand the records in, so every rule
(durations, infrastructure labels, console links, stop reasons in words) is tested without
HTTP.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from ...orchestrator.schemas import FlowRun
from ...states import State, StateType, utcnow

RESULT_PREVIEW_CHARS = 2_000
WINDOWS = {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(days=1), "7d": dt.timedelta(days=7),
           "30d": dt.timedelta(days=30), "all": None}  # fmt: skip
DEFAULT_WINDOW = "7d"
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def state_class(state: Any) -> str:
    """The CSS class of a state badge: ``st-running`` ... (a State, a state row, or a StateType)."""
    kind = state if isinstance(state, StateType) or state is None else state.type
    return f"st-{kind.value.lower()}" if kind else "st-none"


def state_label(state: Any) -> str:
    """The badge text: the state's own name when it has one ('RETRYING'), else its type."""
    if state is None:
        return "NEW"
    return state.name.upper() if state.name and state.name.upper() != state.type.value else state.type.value


def badge(state: Any) -> Markup:
    """A state badge (Python, not a template macro: a page can hold over a thousand of them)."""
    title = escape(state.message) if state is not None and getattr(state, "message", None) else ""
    return Markup(f'<span class="badge {state_class(state)}" title="{title}">{escape(state_label(state))}</span>')


def infra_chip(run: FlowRun) -> Markup:
    """The infrastructure chip of a run: 'ECS 1024 cpu / 4096 MiB', 'Process', ..."""
    label = infra_label(run.infrastructure or {}, run.infra_overrides)
    return Markup(f'<span class="infra infra-{infra_kind(run.infrastructure or {})}">{escape(label)}</span>')


def duration(start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """'1.2 s', '3 m 04 s', '2 h 05 m'; '' when it never started; running runs count to now."""
    if start is None:
        return ""
    seconds = max(0.0, ((end or now or utcnow()) - start).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} m {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} m"


def when(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def infra_label(infra: dict[str, Any], overrides: dict[str, Any] | None = None) -> str:
    """'ECS 1024 cpu / 4096 MiB', 'Process', 'requested 512 cpu / 1024 MiB' (not launched yet)."""
    kind = str(infra.get("kind") or "")
    cpu = infra.get("cpu") or (overrides or {}).get("cpu")
    memory = infra.get("memory") or (overrides or {}).get("memory")
    name = {"ecs-task": "ECS", "ecs": "ECS", "process": "Process", "in-process": "in-process"}.get(kind, kind or "—")
    if not kind and (cpu or memory):
        name = "requested"  # not launched yet: the size its overrides ask for
    size = f" {cpu or '?'} cpu / {memory or '?'} MiB" if (cpu or memory) else ""
    return name + size


def infra_kind(infra: dict[str, Any]) -> str:
    kind = str(infra.get("kind") or "")
    return "ecs" if kind.startswith("ecs") else ("process" if "process" in kind else "none")


@dataclass
class Handle:
    """The infrastructure handle of a run: what to show, and links to AWS consoles."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)


def handle(run: FlowRun) -> Handle:
    """ECS task ARN + cluster with console and CloudWatch links, or the process pid and host."""
    infra, pid = run.infrastructure or {}, run.infrastructure_pid or ""
    out = Handle()
    if pid.startswith("arn:aws:ecs:") or infra.get("task_arn"):
        arn = str(infra.get("task_arn") or pid)
        region = str(infra.get("region") or _arn_part(arn, 3))
        cluster = str(infra.get("cluster") or "default").rsplit("/", 1)[-1]
        task_id = arn.rsplit("/", 1)[-1]
        out.lines = [("ECS task", arn), ("cluster", cluster)]
        if infra.get("task_definition_arn"):
            out.lines.append(("task definition", str(infra["task_definition_arn"])))
        out.links = [("ECS console", ecs_console_url(region, cluster, task_id)),
                     ("CloudWatch logs", cloudwatch_url(region, infra, task_id))]  # fmt: skip
    elif pid.startswith("process:"):
        parts = (pid.split(":") + ["", ""])[:3]
        out.lines = [("process", f"pid {parts[2]}"), ("host", parts[1])]
    elif pid:
        out.lines = [("handle", pid)]
    return out


def _arn_part(arn: str, index: int) -> str:
    parts = arn.split(":")
    return parts[index] if len(parts) > index else ""


def ecs_console_url(region: str, cluster: str, task_id: str) -> str:
    return (f"https://{region}.console.aws.amazon.com/ecs/v2/clusters/{quote(cluster)}/tasks/"
            f"{quote(task_id)}/configuration?region={region}")  # fmt: skip


def cloudwatch_url(region: str, infra: dict[str, Any], task_id: str) -> str:
    """The log stream when the run recorded its group and stream, else the streams of the task."""
    base = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups"
    group, stream = infra.get("log_group"), infra.get("log_stream")
    if group and stream:
        return f"{base}/log-group/{_cw(str(group))}/log-events/{_cw(str(stream))}"
    return f"{base}$3FlogStreamNameFilter$3D{_cw(task_id)}"


def _cw(text: str) -> str:
    """CloudWatch's console escapes URL parts a second time with '$' instead of '%'."""
    return quote(quote(text, safe=""), safe="").replace("%", "$")


_REASON_WORDS = (
    ("out of memory", "Out of memory"),
    ("OutOfMemory", "Out of memory"),
    ("exit 137", "Killed (SIGKILL, likely out of memory)"),
    ("could not pull the image", "Image pull failed"),
    ("CannotPullContainer", "Image pull failed"),
    ("Spot interruption", "Spot capacity reclaimed"),
    ("SpotInterruption", "Spot capacity reclaimed"),
    ("ResourceInitializationError", "Task could not start"),
    ("cancel", "Cancelled"),
    ("timed out", "Timed out"),
)


def stop_reason(state: State | None) -> str:
    """A short headline for why a run ended badly ('' for runs that did not), from the
    message the worker recorded (it already names OOM, image pull and Spot stops in words)."""
    if state is None or state.type not in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
        return ""
    message = state.message or ""
    for needle, words in _REASON_WORDS:
        if needle.lower() in message.lower():
            return words
    return {StateType.CANCELLED: "Cancelled", StateType.CRASHED: "Crashed"}.get(state.type, "Failed")


def result_preview(state: State | None) -> tuple[str, str]:
    """``(kind, text)``: 'json' with a small inline value, 'ref' with the stored reference, or ''."""
    if state is None or not state.is_completed():
        return "", ""
    ref = (state.data or {}).get("result")
    if ref is None:
        return "", ""
    if isinstance(ref, dict) and ref.get("serializer") == "json" and isinstance(ref.get("value"), str):
        try:
            text = json.dumps(json.loads(ref["value"]), indent=2)
        except ValueError:
            text = ref["value"]
        if len(text) <= RESULT_PREVIEW_CHARS:
            return "json", text
    return "ref", json.dumps(ref, indent=2, default=str)[:RESULT_PREVIEW_CHARS]


def window_start(window: str, now: dt.datetime | None = None) -> dt.datetime | None:
    span = WINDOWS.get(window, WINDOWS[DEFAULT_WINDOW])
    return None if span is None else (now or utcnow()) - span


_BY_LEVEL = sorted(((number, name) for name, number in LEVELS.items()), reverse=True)


def level_name(level: int) -> str:
    for number, name in _BY_LEVEL:
        if level >= number:
            return name
    return "DEBUG"


_LEVEL_CLASSES = {name: f"l{name.lower()}" for name in LEVELS}


def log_lines(records: Any, task_names: dict[str, str] | None = None) -> Markup:
    """The log pane's lines (Python, not a template loop: a page starts with 150 of them and
    the live tail sends more); names and messages escaped."""
    names = task_names or {}
    out = []
    for r in records:
        level = level_name(r.level)
        source = names.get(r.task_run_id or "", "") or r.name
        out.append(f'<div class="log {_LEVEL_CLASSES[level]}" data-id="{r.id}"><span class="ts">'
                   f'{r.timestamp.strftime("%H:%M:%S.%f")[:-3]}</span> <span class="lvl">{level}</span> '
                   f'<span class="src">{escape(source)}</span> <span class="msg">{escape(r.message)}</span></div>\n')  # fmt: skip
    return Markup("".join(out))


def log_line(record: Any, task_names: dict[str, str] | None = None) -> str:
    """One log record as a line of the downloadable text file."""
    source = (task_names or {}).get(record.task_run_id or "", "") or record.name
    return f"{record.timestamp.isoformat(timespec='milliseconds')} {level_name(record.level):<8} {source} | {record.message}"


def schedule_label(schedule: dict[str, Any] | None) -> str:
    if not schedule:
        return ""
    if schedule.get("cron"):
        return f"cron {schedule['cron']}" + (f" ({schedule['timezone']})" if schedule.get("timezone") else "")
    if schedule.get("interval"):
        return f"every {schedule['interval']} s"
    if schedule.get("rrule"):
        return f"rrule {schedule['rrule']}"
    return json.dumps(schedule)


def worker_health(last_heartbeat: dt.datetime, now: dt.datetime | None = None, stale_after: float = 90.0) -> str:
    """'healthy' when it polled within ``stale_after`` seconds, else 'stale'."""
    age = ((now or utcnow()) - last_heartbeat).total_seconds()
    return "healthy" if age <= stale_after else "stale"
