"""Pre-started runners for Process launches, sized to demand.

A cold ``python -m fleetflow.runner`` spends ~0.5 s (more on a busy machine) importing
SQLAlchemy, pydantic and fleetflow before it can run anything; a pre-started runner has done
that and waits for one assignment on stdin (see :func:`fleetflow.runner.warm_main`). With a
fixed pool of two, back-to-back ``run_deployment`` calls used up both and then every third call
stalled 1.0-1.6 s on a runner still importing. So:

* a taken runner is replaced at once, and a launch takes a runner that is *ready* (it says so
  on a pipe once its imports are done) before one still starting;
* the pool grows toward the recent launch rate: while one replacement warms up (measured),
  ``rate x warm-up`` more launches arrive, so that many runners (+1) are kept, between the
  ``process_warm_runners`` floor and the pool's concurrency; it shrinks back when launches stop.

:func:`warm_target` is the pure decision; :class:`WarmPool` does the processes.
"""

from __future__ import annotations

import math
import os
import select
import subprocess
import sys
import time
from collections import deque
from typing import Callable, Sequence

READY_FD_ENV = "FLEETFLOW_WARM_READY_FD"  # the runner writes one byte there once it is ready
HORIZON_SECONDS = 10.0  # launches older than this no longer count as demand
INITIAL_WARMUP_SECONDS = 1.0  # until a runner has been seen to get ready


def warm_target(launches: Sequence[float], now: float, *, warmup_seconds: float, floor: int, cap: int,
                horizon: float = HORIZON_SECONDS) -> int:
    """How many runners to keep (ready or starting), given the launch times of the recent past.

    ``rate x warm-up`` launches arrive while one replacement starts; one more covers the launch
    that is taking a runner right now. Never below ``floor``, never above ``cap`` (the pool's
    concurrency: more could never run at once).
    """
    recent = [t for t in launches if now - t <= horizon]
    if not recent:
        return floor
    span = max(now - min(recent), warmup_seconds, 1.0)
    wanted = math.ceil(len(recent) / span * warmup_seconds) + 1
    return max(floor, min(wanted, cap))


class WarmRunner:
    """One pre-started runner process and its readiness pipe."""

    def __init__(self, env: dict[str, str]):
        read_fd, write_fd = os.pipe()
        self.spawned = time.monotonic()
        self.ready_at: float | None = None
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fleetflow.runner", "--warm"], stdin=subprocess.PIPE,
                env={**env, READY_FD_ENV: str(write_fd)}, pass_fds=(write_fd,), start_new_session=True,
            )
        finally:
            os.close(write_fd)
        self._ready_fd: int | None = read_fd

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ready(self) -> bool:
        """Whether it has finished its imports (checked without waiting)."""
        if self.ready_at is None and self._ready_fd is not None:
            readable, _, _ = select.select([self._ready_fd], [], [], 0)
            if readable:
                if os.read(self._ready_fd, 1):
                    self.ready_at = time.monotonic()
                self._close_pipe()
        return self.ready_at is not None

    def dismiss(self) -> None:
        """Closing stdin makes an idle runner exit at once."""
        self._close_pipe()
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass

    def _close_pipe(self) -> None:
        if self._ready_fd is not None:
            os.close(self._ready_fd)
            self._ready_fd = None


class WarmPool:
    """The idle pre-started runners of one launcher."""

    def __init__(self, floor: int, *, cap: int | None = None, clock: Callable[[], float] = time.monotonic):
        self.floor = floor
        self._clock = clock  # when launches happened (the demand); injectable for tests
        self.cap = max(floor, cap if cap is not None else floor)
        self.warmup_seconds = INITIAL_WARMUP_SECONDS
        self._idle: list[WarmRunner] = []
        self._launches: deque[float] = deque(maxlen=256)
        self.refill()

    def set_cap(self, cap: int) -> None:
        """The most runs that can execute at once (the worker's concurrency); never below the floor."""
        self.cap = max(self.floor, cap)

    def size(self) -> int:
        """Idle runners, ready or still starting."""
        self._forget_dead()
        return len(self._idle)

    def target(self) -> int:
        return warm_target(self._launches, self._clock(), warmup_seconds=self.warmup_seconds,
                           floor=self.floor, cap=self.cap)

    def take(self) -> subprocess.Popen:
        """A runner for a launch: a ready one first, else the one closest to ready, else a new
        one. The pool is topped up right after (the caller hands over its assignment first)."""
        self._launches.append(self._clock())
        self._forget_dead()
        ready = [r for r in self._idle if r.ready_at is not None]
        chosen = (ready or self._idle or [None])[0]
        if chosen is None:
            chosen = WarmRunner(_runner_env())
        else:
            self._idle.remove(chosen)
        return chosen.proc

    def refill(self) -> None:
        """Start runners up to the target; dismiss ready ones above it (demand fell)."""
        self._forget_dead()
        target = self.target()
        while len(self._idle) < target:
            self._idle.append(WarmRunner(_runner_env()))
        surplus = len(self._idle) - target
        for runner in [r for r in self._idle if r.ready()][:max(0, surplus)]:
            self._idle.remove(runner)
            runner.dismiss()

    def close(self) -> list[subprocess.Popen]:
        """Dismiss every idle runner; their processes, for the caller to reap."""
        idle, self._idle = self._idle, []
        for runner in idle:
            runner.dismiss()
        return [r.proc for r in idle]

    def _forget_dead(self) -> None:
        alive = []
        for runner in self._idle:
            if runner.alive():
                if runner.ready_at is None and runner.ready():
                    self._learn_warmup(runner.ready_at - runner.spawned)  # type: ignore[operator]
                alive.append(runner)
            else:
                runner.dismiss()
        self._idle = alive

    def snapshot(self) -> list[tuple[int, bool]]:
        """(pid, ready) of each idle runner, oldest first (for status output and tests)."""
        self._forget_dead()
        return [(r.proc.pid, r.ready_at is not None) for r in self._idle]

    def ready_count(self) -> int:
        """Idle runners that finished their imports."""
        self._forget_dead()
        return sum(1 for r in self._idle if r.ready_at is not None)

    def _learn_warmup(self, seconds: float) -> None:
        self.warmup_seconds = 0.7 * self.warmup_seconds + 0.3 * seconds


def _runner_env() -> dict[str, str]:
    return {**os.environ, "MALLOC_ARENA_MAX": "2"}
