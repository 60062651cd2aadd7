"""Group commit: the task-run records of one process, committed many per transaction.

Why
---
A task run used to cost two committed transactions (create, final state). On SQLite most of
that is the COMMIT itself (~43 us on this kind of disk even with WAL + ``synchronous=NORMAL``),
paid twice per task. Here the task-run creations and state changes of every thread of the
process go into one buffer, and a background thread commits the buffer every
``group_commit_window`` seconds, or as soon as it holds ``group_commit_max_records`` records,
in one transaction of two ``executemany`` calls.

The rules (the seam any other batching layer, e.g. an HTTP client, must keep)
------------------------------------------------------------------------------
1. **What is buffered**: ``create_task_run``, and ``set_task_run_state`` (without ``force``) of a
   task run *whose creation is still in the buffer*. Nobody outside this process can see such a
   row yet, so the transition is validated exactly, in memory, with the same rules and errors as
   the store's conditional UPDATE, and the row is inserted with its final columns (no UPDATE).
   A task run this process created whose creation a group commit already wrote ("settled": a
   ``.submit()``-ed task that outlives the window) has its later changes buffered too: checked
   in memory against the state this process gave it, and written by the next group commit with
   the store's own conditional UPDATE, which checks the stored state again, in the same
   transaction as the batch's new runs (call order spans both: committed apart, a kill between
   them could leave a later task COMPLETED and an earlier one RUNNING). A change another
   process made meanwhile makes that UPDATE refuse; the refusal is logged (the engine that
   recorded the change has moved on). ``force`` changes are immediate and end the buffering of
   that run; so does its final state, and the oldest of more than ``SETTLED_MAX`` settled runs.
2. **Ordering**: every immediate write of this store -- a flow run's state change, claims,
   leases, logs, cancellation, creating runs of deployments, the task cache -- first commits
   whatever is buffered, under the same lock. So a flow run's final state is committed only
   after every task-run record written before it; readers of task runs in this process
   (``read_task_run(s)``, ``read_task_run_states``) also flush first (read-your-writes).
3. **Visibility**: other processes see buffered records within one window (default 20 ms).
4. **Crash**: a SIGKILL loses at most the buffered records (one window, at most
   ``max_records`` + what arrived while it committed). The flow run they belong to is then not
   final and still leased to the dead process, so the lease rules mark it CRASHED: never
   COMPLETED with records missing.
5. ``group_commit_window = 0`` turns the buffer off: every write commits on its own, as before.

The buffer itself is plain data (:class:`TaskRunBuffer`); :class:`GroupCommit` adds the
flusher thread. The store (:mod:`.base`) owns the lock and the SQL.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import Any, Callable, Sequence

from ..exceptions import ObjectAlreadyExists
from ..states import State
from . import transitions as tr
from .pid import current_pid

log = logging.getLogger("fleetflow.store")

Rows = list[dict[str, Any]]


# Task runs this process committed and may still change (not final), remembered so their next
# state changes can be buffered too; bounded, oldest forgotten first (their changes then commit at once).
SETTLED_MAX = 4096

Update = tuple[str, State]  # (task run id, the state it moves to)


class TaskRunBuffer:
    """Task runs created in this process and not committed yet: each with its row values and
    its whole state history so far, plus the history rows in call order; and state changes of
    task runs this process created and already committed ("settled"), in call order."""

    def __init__(self) -> None:
        self._runs: dict[str, tuple[dict[str, Any], list[State]]] = {}
        self._history: Rows = []
        self._updates: list[Update] = []
        self._settled: dict[str, tuple[dict[str, Any], list[State]]] = {}

    def __len__(self) -> int:
        return len(self._history) + len(self._updates)

    def __contains__(self, task_run_id: str) -> bool:
        return task_run_id in self._runs or task_run_id in self._settled

    def add_created(self, values: dict[str, Any], states: Sequence[State], history: Rows) -> None:
        """A new task run (``values`` already carry the columns of ``states``)."""
        run_id = values["id"]
        if run_id in self._runs:
            raise ObjectAlreadyExists(f"A task run with id {run_id!r} already exists.")
        self._runs[run_id] = (values, list(states))
        self._history.extend(history)

    def add_transition(self, task_run_id: str, state: State) -> dict[str, Any]:
        """Apply ``state`` to a buffered or settled run; its row values after the change. Raises
        InvalidStateTransition exactly as the store's conditional UPDATE would (for a settled
        run, against the state this process gave it; the UPDATE checks the stored one again)."""
        buffered = self._runs.get(task_run_id)
        values, states = buffered if buffered is not None else self._settled[task_run_id]
        tr.apply_columns(values, states[-1].type, state)  # validates the step, as initial_columns would
        states.append(state)
        if buffered is not None:
            self._history.extend(tr.history_rows([state], task_run_id=task_run_id))
        else:
            self._updates.append((task_run_id, state))
            if state.is_final:
                del self._settled[task_run_id]  # a final run seldom changes again
        return values

    def forget(self, task_run_id: str) -> None:
        """A change written past the buffer (``force``): what this process knew is stale."""
        self._settled.pop(task_run_id, None)

    def take(self) -> "Batch":
        """Everything buffered; the buffer is empty after. The batch's new runs that are not
        final count as settled from now on (a copy of each: the batch's rows are what is being
        written), so a change that arrives while the batch commits is buffered behind it."""
        batch = Batch(self._runs, self._history, self._updates)
        self._runs, self._history, self._updates = {}, [], []
        settled = self._settled
        for run_id, (values, states) in batch.runs.items():
            if not states[-1].is_final:
                settled[run_id] = (dict(values), list(states))
        while len(settled) > SETTLED_MAX:
            del settled[next(iter(settled))]
        return batch

    def restore(self, batch: "Batch") -> None:
        """Put back a batch that could not be committed (one transaction: none of it was),
        ahead of what arrived since. A restored new run takes back the changes made to it
        meanwhile, as if they had been buffered with its creation."""
        runs, history = {**batch.runs, **self._runs}, batch.history + self._history
        kept = []
        for run_id, state in batch.updates + self._updates:
            if run_id in batch.runs:  # checked when it was buffered: it applies
                values, states = runs[run_id]
                tr.apply_columns(values, states[-1].type, state)
                states.append(state)
                history.extend(tr.history_rows([state], task_run_id=run_id))
            else:
                kept.append((run_id, state))
        for run_id in batch.runs:
            self._settled.pop(run_id, None)
        self._runs, self._history, self._updates = runs, history, kept


class Batch:
    """What one group commit writes: task_runs rows (final columns) and states rows of new
    task runs, then state changes of settled ones."""

    def __init__(self, runs: dict[str, tuple[dict[str, Any], list[State]]], history: Rows,
                 updates: list[Update] | None = None):
        self.runs = runs
        self.history = history
        self.updates = updates or []

    def __bool__(self) -> bool:
        return bool(self.history or self.updates)

    @property
    def rows(self) -> Rows:
        return [values for values, _ in self.runs.values()]


class GroupCommit:
    """The process's buffer for one store, and the thread that commits it.

    ``commit`` is the store's ``flush_writes`` (it takes the store's lock, then :meth:`take`).
    """

    def __init__(self, commit: Callable[[], None], *, window: float, max_records: int):
        self.window = window
        self.max_records = max_records
        self.buffer = TaskRunBuffer()
        self.lock = threading.Lock()  # guards the buffer only (never held while committing)
        self._commit = commit
        self._wake = threading.Condition(self.lock)
        self._closed = False
        self._pid = current_pid()
        self._thread: threading.Thread | None = None
        self.known_flow_runs: set[str] = set()
        _live.add(self)

    def remember_flow_run(self, flow_run_id: str) -> None:
        """A flow run seen to exist, so its task runs may be buffered (bounded memory)."""
        if len(self.known_flow_runs) >= 10_000:
            self.known_flow_runs.clear()
        self.known_flow_runs.add(flow_run_id)

    # ---- called by the store, under ``lock`` -------------------------------------------------
    def check_process(self) -> None:
        """A forked child starts with an empty buffer (its parent commits its own records)."""
        if self._pid != current_pid():
            self._pid, self.buffer, self._thread = current_pid(), TaskRunBuffer(), None

    def added(self, was_empty: bool) -> None:
        """Wake the flusher when the buffer just became non-empty, or full."""
        if self._thread is None:  # first record (or first in a forked child)
            self._thread = threading.Thread(target=self._loop, name="fleetflow-group-commit", daemon=True)
            self._thread.start()
        if was_empty or len(self.buffer) >= self.max_records:
            self._wake.notify()

    def take(self) -> Batch:
        with self.lock:
            self.check_process()
            return self.buffer.take()

    def restore(self, batch: Batch) -> None:
        with self.lock:
            self.buffer.restore(batch)


    def pending(self) -> bool:
        return bool(self.buffer) and self._pid == current_pid()

    # ---- the flusher ----------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self.lock:
                while not self.buffer and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                deadline = time.monotonic() + self.window
                while len(self.buffer) < self.max_records and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._wake.wait(remaining)
            self._flush_quietly()

    def _flush_quietly(self) -> None:
        try:
            self._commit()
        except Exception:  # noqa: BLE001 - a background thread: log, and the next write retries
            log.exception("could not commit buffered task-run records; retrying with the next write")

    def close(self) -> None:
        """Commit what is buffered and stop the flusher."""
        with self.lock:
            self._closed = True
            self._wake.notify_all()
        self._commit()
        _live.discard(self)


_live: "weakref.WeakSet[GroupCommit]" = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """Records buffered when the interpreter exits normally are committed, not dropped."""
    for group in list(_live):
        if group.pending():
            group._flush_quietly()
