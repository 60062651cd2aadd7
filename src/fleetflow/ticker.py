"""One background thread per process for the slow periodic jobs: lease renewals and usage samples.

Why one thread and not one per job: every thread a process starts costs it at its exit too,
and a run process launched from the fork server is short. Measured on a 2-core VM: a forked
child spends ~0.8 ms more system time per thread it starts (the thread's stack, and the
address space shared with it, make every later copy-on-write fault and the final teardown
dearer), on ~20 ms of CPU for a whole trivial run. The lease keeper (every third of the lease)
and the usage sampler (every few seconds) each had a thread that slept almost all the time.

What may share this thread: jobs that run rarely, return quickly and tolerate being late by
another job's run time. (The usage sample's slowest source, the ECS task metadata endpoint,
gives up after 2 s; a lease lasts 30 s by default and is renewed every 10.) Lines to print or
store are not such jobs (a console write blocks while the reader of a full pipe is away; a
lease renewal must not wait on that), nor is the group-commit flusher (woken by writers, not
by the clock).

A job's exception is logged and the job stays scheduled. In a forked child the parent's jobs
are gone (they belong to the parent's runs); the child's own jobs start the child's thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from typing import Callable

from .orchestrator.pid import current_pid

log = logging.getLogger("fleetflow.ticker")


class Job:
    """A periodic job; :meth:`cancel` stops it (and waits for a run of it in progress)."""

    __slots__ = ("interval", "fn", "name", "cancelled", "failing", "_ticker")

    def __init__(self, ticker: "Ticker", interval: float, fn: Callable[[], None], name: str):
        self.interval, self.fn, self.name, self._ticker = interval, fn, name, ticker
        self.cancelled = False
        self.failing = False  # the last run raised (logged once, until a run succeeds again)

    def cancel(self) -> None:
        """Never runs again once this returns (unless called from inside the job itself, which
        then finishes its current run)."""
        self._ticker._cancel(self)


class Ticker:
    """A heap of periodic jobs and the thread that runs them when due."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._running: Job | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def every(self, interval: float, fn: Callable[[], None], name: str) -> Job:
        """Run ``fn`` every ``interval`` seconds, the first time one interval from now.

        Raises what starting a thread raises (``RuntimeError``, ``MemoryError``: an address
        space limit too tight for another stack) when this is the process's first job; the job
        is then not scheduled."""
        job = Job(self, max(0.001, float(interval)), fn, name)
        with self._cond:
            if self._pid != current_pid() or self._thread is None:
                self._start_locked()
            heapq.heappush(self._heap, (time.monotonic() + job.interval, next(self._seq), job))
            self._cond.notify()
        return job

    def _start_locked(self) -> None:
        thread = threading.Thread(target=self._loop, name="fleetflow-ticker", daemon=True)
        thread.start()  # may raise: nothing changed then
        self._thread, self._pid = thread, current_pid()

    def _cancel(self, job: Job) -> None:
        with self._cond:
            job.cancelled = True
            while self._running is job and threading.current_thread() is not self._thread:
                self._cond.wait()

    def _loop(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                due, _, job = self._heap[0]
                delay = due - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._running = job
                self._cond.release()
                try:
                    job.fn()
                    job.failing = False
                except Exception:  # noqa: BLE001 - one failing job must not stop the others
                    if not job.failing:
                        log.exception("background job %s failed (it keeps running; logged again "
                                      "only after it has succeeded once)", job.name)
                    job.failing = True
                finally:
                    self._cond.acquire()
                    self._running = None
                    self._cond.notify_all()
                if not job.cancelled:  # next run one interval after this one ended: no bursts
                    heapq.heappush(self._heap, (time.monotonic() + job.interval, next(self._seq), job))

    def cancel_all(self) -> None:
        """Cancel every job (tests; the thread then sleeps until a new one arrives)."""
        with self._cond:
            jobs = [job for _, _, job in self._heap]
        for job in jobs:
            job.cancel()

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's jobs and thread are not the child's (see module doc)."""
        self._cond = threading.Condition(threading.Lock())
        self._heap, self._running, self._thread, self._pid = [], None, None, 0


ticker = Ticker()
os.register_at_fork(after_in_child=ticker.forget_after_fork)
