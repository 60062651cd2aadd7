"""What every ``fleetflow`` command shares: consoles, tables vs ``--json``, formatting, errors.

Commands print human output with rich and machine output as plain JSON on stdout, so
``fleetflow flow-run ls --json | jq`` never sees colour codes or wrapped lines. Warnings and
errors go to stderr for the same reason.

Errors: a :class:`~fleetflow.exceptions.FleetflowError` is something the user can act on, so it
is printed as one red ``Error: ...`` line and the command exits 1 -- never a traceback. Anything
else is a bug: one line naming the exception, plus a hint to rerun with ``FLEETFLOW_DEBUG=1``,
which re-raises it so the full traceback shows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import sys
from typing import Any, Iterator, Sequence

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..exceptions import FleetflowError

DEBUG_ENV = "FLEETFLOW_DEBUG"
_PIPE_WIDTH = 160  # piped output is for grep/less: wide enough that tables do not wrap ids

STATE_STYLES: dict[str, str] = {
    "SCHEDULED": "yellow",
    "PENDING": "bright_black",
    "RUNNING": "bold blue",
    "COMPLETED": "green",
    "FAILED": "bold red",
    "CRASHED": "bold magenta",
    "CANCELLING": "dark_orange",
    "CANCELLED": "bright_black",
}

LEVEL_STYLES: dict[str, str] = {
    "DEBUG": "bright_black",
    "INFO": "cyan",
    "WARNING": "yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold red reverse",
}


# ---- consoles --------------------------------------------------------------------------------
def _width(stream: Any) -> int | None:
    """Terminal width on a TTY (rich decides); a wide fixed width when piped, unless COLUMNS."""
    if os.environ.get("COLUMNS"):
        return None
    isatty = getattr(stream, "isatty", None)
    return None if isatty and isatty() else _PIPE_WIDTH


def console() -> Console:
    """A console on the *current* stdout (built per call so test runners that swap stdout work)."""
    return Console(width=_width(sys.stdout), highlight=False)


def err_console() -> Console:
    """A console on the current stderr, for warnings and errors."""
    return Console(stderr=True, width=_width(sys.stderr), highlight=False)


def print_json(data: Any) -> None:
    """Machine output: indented JSON on stdout, datetimes as ISO strings, models dumped."""
    typer.echo(dumps(data, indent=2))


def dumps(data: Any, indent: int | None = None) -> str:
    """JSON text of any mix of pydantic models, datetimes, enums and plain values."""
    from pydantic_core import to_jsonable_python

    return json.dumps(to_jsonable_python(data, fallback=str), indent=indent)


def warn(message: str) -> None:
    """One yellow line on stderr: something the user should fix, but the command worked."""
    err_console().print(Text("Warning: ", style="bold yellow") + Text(_one_line(message), style="yellow"), soft_wrap=True)


def success(message: str) -> None:
    """One green line on stdout confirming what a command changed."""
    console().print(Text(message, style="green"), soft_wrap=True)


def note(message: str) -> None:
    """A dim informational line on stdout (empty results, next steps)."""
    console().print(Text(message, style="dim"), soft_wrap=True)


def error_line(message: str) -> None:
    """The single red ``Error: ...`` line every failing command prints on stderr."""
    err_console().print(Text("Error: ", style="bold red") + Text(_one_line(message), style="red"), soft_wrap=True)


def _one_line(message: str) -> str:
    """Errors must stay one line even when a message was built from several."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


# ---- errors ----------------------------------------------------------------------------------
_PASS_THROUGH = (typer.Exit, typer.Abort, typer.TyperException)


@contextlib.contextmanager
def error_boundary() -> Iterator[None]:
    """Turn exceptions into one readable line and exit code 1 (see the module docstring).

    The top-level command group wraps every command in this, so sub-apps get it for free;
    scripts such as the flagship example can use it around their own code too.
    """
    try:
        yield
    except _PASS_THROUGH:
        raise
    except FleetflowError as exc:
        error_line(str(exc) or type(exc).__name__)
        raise typer.Exit(1) from None
    except Exception as exc:  # noqa: BLE001 - the point is to catch what nobody anticipated
        if os.environ.get(DEBUG_ENV):
            raise
        error_line(f"unexpected {type(exc).__name__}: {exc}")
        err_console().print(
            Text(f"This looks like a bug in fleetflow; rerun with {DEBUG_ENV}=1 to see the traceback.", style="dim"),
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


# ---- formatting ------------------------------------------------------------------------------
def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def fmt_time(value: dt.datetime | None, *, millis: bool = False, short: bool = False) -> str:
    """Local wall-clock time (what a user compares with their own clock); '-' when unset.

    ``short`` drops the year when it is this year, to keep list tables narrow.
    """
    if value is None:
        return "-"
    if value.tzinfo is None:  # the store hands out UTC; be lenient with naive values
        value = value.replace(tzinfo=dt.timezone.utc)
    local = value.astimezone()
    this_year = local.year == dt.datetime.now().astimezone().year
    text = local.strftime("%m-%d %H:%M:%S" if short and this_year else "%Y-%m-%d %H:%M:%S")
    return f"{text}.{local.microsecond // 1000:03d}" if millis else text


def fmt_seconds(seconds: float | None) -> str:
    """Compact duration: '0.42s', '12.3s', '4m05s', '2h03m', '3d04h'."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def duration_seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    """Seconds between start and end; a run that has not ended counts up to now."""
    if start is None:
        return None
    return ((end or now()) - start).total_seconds()


def fmt_duration(start: dt.datetime | None, end: dt.datetime | None) -> str:
    return fmt_seconds(duration_seconds(start, end))


def fmt_ago(value: dt.datetime | None, *, never: str = "never") -> str:
    """'12s ago' style, because 'last polled' only matters relative to now."""
    if value is None:
        return never
    seconds = (now() - value).total_seconds()
    if seconds < 0:
        return f"in {_whole(-seconds)}"
    return f"{_whole(seconds)} ago"


def _whole(seconds: float) -> str:
    """Like :func:`fmt_seconds` without fractions: '7s', '4m05s'."""
    return f"{int(seconds)}s" if seconds < 60 else fmt_seconds(seconds)


def state_name(state: Any) -> str:
    """The state type as text for a State, a StateType, a string or None."""
    if state is None:
        return "-"
    value = getattr(state, "type", state)
    return str(getattr(value, "value", value))


def state_text(state: Any) -> Text:
    """The state type, coloured (green COMPLETED, red FAILED...); a custom name is appended."""
    kind = state_name(state)
    text = Text(kind, style=STATE_STYLES.get(kind, ""))
    name = getattr(state, "name", "")
    if name and name.upper() != kind and name.lower() != kind.lower():
        text.append(f" ({name})", style="dim")
    return text


def level_name(level: int) -> str:
    return logging.getLevelName(level) if isinstance(level, int) else str(level)


def level_text(level: int) -> Text:
    name = level_name(level)
    return Text(f"{name:<8}", style=LEVEL_STYLES.get(name, ""))


def short_id(value: str | None) -> str:
    """First 8 characters: unique enough to read, and accepted back as an id prefix."""
    return value[:8] if value else "-"


def short_task_run_id(value: str | None) -> str:
    """Last 8 characters: a task-run id is time-ordered (engine/ids.py), so its first ones are
    shared by every task run of the same minute, and its last ones are random."""
    return value[-8:] if value else "-"


def fmt_infra(infrastructure: dict[str, Any] | None) -> str:
    """'ecs cpu 1024 / mem 2048' -- what the run was launched on and how big it was."""
    info = infrastructure or {}
    kind = str(info.get("kind") or "-")
    if info.get("launch_type"):
        kind += f" {info['launch_type']}"
    size = [f"{label} {info[key]}" for key, label in (("cpu", "cpu"), ("memory", "mem")) if info.get(key) not in (None, "")]
    return f"{kind} {' / '.join(size)}" if size else kind


def short_handle(handle: str | None) -> str:
    """A launch handle readable in a table: 'pid 1234@host' or 'task 0f1e2d3c' (ECS ARN tail)."""
    if not handle:
        return "-"
    if handle.startswith("process:"):
        parts = handle.split(":")
        host, pid = (parts + ["", ""])[1:3]
        return f"pid {pid}@{host}" if host else f"pid {pid}"
    if handle.startswith("arn:") and "/" in handle:
        return f"task {handle.rsplit('/', 1)[-1][:8]}"
    return handle if len(handle) <= 24 else handle[:21] + "..."


def mask_url(url: str | None) -> str:
    """The URL with any password replaced by ***, so `fleetflow version` is safe to paste."""
    if not url:
        return "-"
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


class PlainTable(Table):
    """A Table whose string cells are literal text: a run named '[x]' never parses as markup."""

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        super().add_row(*(Text(r) if isinstance(r, str) else r for r in renderables), **kwargs)


def table(
    *columns: str, title: str | None = None, no_wrap: Sequence[str] = ("ID", "STATE", "#", "DURATION")
) -> Table:
    """A table in the house style: bold headers, light rules, ids never truncated.

    Columns in ``no_wrap`` (short ids, states) stay on one line on a narrow terminal; the
    others fold rather than being cut, so nothing a user may copy is lost.
    """
    tbl = PlainTable(
        title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    for column in columns:
        tbl.add_column(column, overflow="fold", no_wrap=column in no_wrap)
    return tbl


def kv_grid(rows: Sequence[tuple[str, Any]]) -> Table:
    """Two-column 'label  value' grid used by every inspect panel."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value if isinstance(value, Text) else Text(str(value)))
    return grid


def panel(body: Any, title: str) -> Panel:
    """A titled box around an inspect header, only as wide as its content."""
    return Panel(body, title=escape(title), title_align="left", expand=False)


def plain(value: Any) -> str:
    """Markup-safe text for values that come from users (names, messages)."""
    return escape(str(value))


def open_client() -> Any:
    """The store client (imported lazily: `fleetflow --help` should not load SQLAlchemy)."""
    from ..client import get_client

    return get_client()
