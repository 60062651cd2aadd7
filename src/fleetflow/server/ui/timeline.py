"""The flow-run timeline: task runs and child runs as bars over time, as server-rendered SVG.

Readable at 1,000 task runs: bars are packed into lanes (a bar reuses the lane that freed up
first when that happened before its start), so concurrent work stacks and sequential work
shares a row; child flow runs get their own lanes on top; lane height shrinks as lanes grow
so the picture keeps a bounded height (past :data:`MAX_LANES` concurrent bars, lanes fold onto each other, translucent). Up
to :data:`TITLED_BARS` bars each carries a ``<title>`` (name, state, duration) for hover; past
that the task bars of one state are one ``<path>`` (a fifth of the markup). Pure: records in,
markup out (escaped).
"""

from __future__ import annotations

import datetime as dt
import heapq
from html import escape
from typing import Any, NamedTuple, Sequence

from ...states import StateType, utcnow
from .views import duration

WIDTH, AXIS = 1000, 18
MAX_HEIGHT = 420
MAX_LANES = 100  # past this, lanes fold onto each other (drawn translucent) so rows stay >= 4 px
# Bars are coloured by a one-letter class (style.css) so 1,000 bars stay small markup.
_CLASS = {
    StateType.COMPLETED: "c", StateType.RUNNING: "r", StateType.FAILED: "f", StateType.CRASHED: "x",
    StateType.CANCELLED: "k", StateType.CANCELLING: "k", StateType.PENDING: "p", StateType.SCHEDULED: "p",
}  # fmt: skip
_NAMES = {"c": "completed", "r": "running", "f": "failed", "x": "crashed", "k": "cancelled", "p": "waiting", "n": "new"}
TITLED_BARS = 200  # up to this many bars, each has its own hover title; past it, one per state


class Bar(NamedTuple):
    """One bar (a tuple: building a thousand frozen dataclasses was a tenth of the page)."""

    name: str
    start: dt.datetime
    end: dt.datetime | None
    state: StateType | None
    child: bool = False
    href: str | None = None


def bars(task_runs: Sequence[Any], children: Sequence[Any]) -> list[Bar]:
    """Bars of the runs that started (the linking task run of a child is left to the child's bar)."""
    child_links = {c.parent_task_run_id for c in children}
    out = [Bar(c.name, c.start_time, c.end_time, c.state_type, True, f"/runs/{c.id}") for c in children if c.start_time]
    out += [Bar(t.name, t.start_time, t.end_time, t.state.type if t.state else None)
            for t in task_runs if t.start_time and t.id not in child_links]  # fmt: skip
    return out


def lanes(items: Sequence[Bar], now: dt.datetime) -> list[int]:
    """The lane of each bar, by start time: the lane that frees up first if it is free by the
    bar's start, else a new lane (a heap per kind: O(n log n) at thousands of bars). Child
    runs get their own lanes, on top."""
    order = sorted(range(len(items)), key=lambda i: (not items[i].child, items[i].start))
    free: dict[bool, list[tuple[dt.datetime, int]]] = {True: [], False: []}
    lane_of, count = [0] * len(items), 0
    for i in order:
        bar, heap = items[i], free[items[i].child]
        if heap and heap[0][0] <= bar.start:
            _end, lane = heapq.heappop(heap)
        else:
            lane, count = count, count + 1
        heapq.heappush(heap, (bar.end or now, lane))
        lane_of[i] = lane
    return lane_of


def svg(task_runs: Sequence[Any], children: Sequence[Any], *, now: dt.datetime | None = None) -> str:
    """The timeline's ``<svg>`` ('' when nothing started yet)."""
    now = now or utcnow()
    items = bars(task_runs, children)
    if not items:
        return ""
    lane_of = lanes(items, now)
    folded = max(lane_of) >= MAX_LANES
    lane_of = [lane % MAX_LANES for lane in lane_of]
    count = max(lane_of) + 1
    row = max(3.0, min(16.0, (MAX_HEIGHT - AXIS) / count))
    height = AXIS + row * count + 4
    # Seconds since the epoch, once per bar end: cheaper than timedelta arithmetic per use.
    starts = [b.start.timestamp() for b in items]
    ends = [(b.end or now).timestamp() for b in items]
    base = min(starts)
    span = max(max(ends) - base, 0.001)
    scale = WIDTH / span
    css = "timeline folded" if folded else "timeline"
    parts = [f'<svg class="{css}" viewBox="0 0 {WIDTH} {height:.0f}" preserveAspectRatio="none" '
             f'role="img" aria-label="timeline of {len(items)} runs" xmlns="http://www.w3.org/2000/svg">']  # fmt: skip
    parts += _axis(span, height)
    many = len(items) > TITLED_BARS
    paths: dict[str, list[str]] = {}
    tops = [f"{AXIS + lane * row + 1:.0f}" for lane in range(count)]  # each lane's y, formatted once
    tall = f"{max(row - 2, 1.5):.0f}"
    for bar, lane, start, end in zip(items, lane_of, starts, ends):
        left = (start - base) * scale
        width = max((end - base) * scale - left, 1.5)
        if many and not bar.child:  # one path per state: ~20 bytes a bar instead of ~100
            w = f"{width:.1f}"
            paths.setdefault(_css(bar), []).append(f"M{left:.0f} {tops[lane]}h{w}v{tall}h-{w}z")
        else:
            parts.append(_bar(bar, left, width, AXIS + lane * row, row, now))
    for css, shapes in paths.items():
        parts.append(f'<path class="{css}" d="{"".join(shapes)}"><title>{len(shapes)} {_NAMES[css]} task runs</title></path>')
    parts.append("</svg>")
    return "".join(parts)


def _css(bar: Bar) -> str:
    return _CLASS.get(bar.state, "n") if bar.state else "n"


def _axis(span: float, height: float) -> list[str]:
    out = []
    for i in range(6):
        px = WIDTH * i / 5
        out.append(f'<line x1="{px:.1f}" y1="{AXIS - 4}" x2="{px:.1f}" y2="{height:.0f}" class="tl-grid"/>')
        anchor = "start" if i == 0 else ("end" if i == 5 else "middle")
        out.append(f'<text x="{px:.1f}" y="11" text-anchor="{anchor}" class="tl-tick">+{_secs(span * i / 5)}</text>')
    return out


def _bar(bar: Bar, x: float, w: float, y: float, row: float, now: dt.datetime) -> str:
    css = _css(bar)
    title = escape(f"{bar.name} {bar.state.value if bar.state else 'NEW'} {duration(bar.start, bar.end, now)}")
    rect = (f'<rect class="{css}{" ch" if bar.child else ""}" x="{x:.0f}" y="{y + 1:.0f}" width="{w:.1f}" '
            f'height="{max(row - 2, 1.5):.0f}"><title>{title}</title></rect>')  # fmt: skip
    label = ""
    if row >= 12 and w > 60:
        label = f'<text x="{x + 4:.1f}" y="{y + row - 4:.1f}" class="tl-label">{escape(bar.name[:40])}</text>'
    if bar.href:
        return f'<a href="{escape(bar.href)}">{rect}{label}</a>'
    return rect + label


def _secs(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"
