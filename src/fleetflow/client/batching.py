"""Write-behind for the HTTP client: a running flow's task-run writes and log lines, sent in
batches (``POST /api/v1/batch``) by a background thread instead of one request each.

What is deferred: creating a task run (the client chose its id, so the :class:`TaskRun` can be
built here), state changes of the task runs this client created while they are not final
(checked here against the same transition rules the store applies, so an invalid one still
raises at once), and log lines. Everything else the client sends first *flushes*: it waits
until every deferred write before it is sent and acknowledged. That is the ordering rule:

* a flow run's FINAL state (like every other call) is sent only after all its task-run
  records and log lines are stored, so whoever sees the run final sees all of it;
* reads see the writes made before them (read-your-writes), and a sub-flow, a concurrency
  slot or a cache entry never names a task run the server does not know yet.

The sender takes whatever is queued when it is free (an in-flight batch lets the next one
grow), so batches are as large as the server's pace makes them, with no timer delay.

Failures: a batch that cannot be delivered (server down past the outage budget) is kept, with
its request id, and re-sent first by the next flush, which raises the same
:class:`~fleetflow.exceptions.ServerUnavailable` an unbatched write would have; a batch the
server refuses as a whole (a revoked key) is dropped, its items reported. An item the
server refuses (say, a run token used after its run ended) is reported on stderr and kept in
:meth:`WriteBehind.rejections`: the write it stood for happened in the past, so there is no
caller left to raise to.
"""

from __future__ import annotations

import collections
import sys
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from ..exceptions import FleetflowError, ServerUnavailable, error_from_payload

MAX_BATCH = 1000  # items per request (the server accepts up to 2000)
MAX_REJECTIONS = 100  # refused items remembered for inspection


@dataclass
class _Batch:
    items: list[dict[str, Any]]
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class WriteBehind:
    """Deferred writes of one client. ``send(items, request_id)`` posts one batch and returns
    the per-item results (raising when the batch itself could not be delivered)."""

    def __init__(self, send: Callable[[list[dict[str, Any]], str], list[dict[str, Any]]]):
        self._send = send
        self._pending: list[dict[str, Any]] = []
        self._undelivered: _Batch | None = None  # a batch whose delivery failed: re-sent first
        self._lock = threading.Lock()  # guards _pending
        self._sending = threading.Lock()  # one batch on the wire at a time: order is kept
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._rejections: collections.deque[FleetflowError] = collections.deque(maxlen=MAX_REJECTIONS)

    # ---- producers ------------------------------------------------------------------------
    def add(self, item: dict[str, Any]) -> None:
        """Queue one write; the background sender picks it up as soon as it is free."""
        with self._lock:
            self._pending.append(item)
        if self._thread is None or not self._thread.is_alive():
            self._start()
        self._wake.set()

    def has_pending(self) -> bool:
        """Whether anything is queued or on the wire (a flush would have something to wait for)."""
        return bool(self._pending) or self._undelivered is not None or self._sending.locked()

    def flush(self) -> None:
        """Send everything queued so far and wait until the server acknowledged it."""
        with self._sending:
            if self._undelivered is not None:
                self._deliver(self._undelivered)
            while True:
                batch = self._take()
                if batch is None:
                    return
                self._deliver(batch)

    def rejections(self) -> list[FleetflowError]:
        """The most recent items the server refused, oldest first (also reported on stderr)."""
        return list(self._rejections)

    # ---- sending --------------------------------------------------------------------------
    def _take(self) -> _Batch | None:
        with self._lock:
            if not self._pending:
                return None
            items, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        return _Batch(items)

    def _deliver(self, batch: _Batch) -> None:
        """Post one batch; kept for the next flush if it cannot be delivered."""
        self._undelivered = batch
        try:
            results = self._send(batch.items, batch.request_id)
        except ServerUnavailable:
            raise  # stays undelivered: the next flush re-sends it with the same request id
        except FleetflowError as exc:  # refused as a whole (say, a revoked key): re-sending cannot help
            self._undelivered = None
            for item in batch.items:
                self._reject(item, exc)
            raise
        self._undelivered = None
        for item, result in zip(batch.items, results):
            if "error" in result:
                self._reject(item, error_from_payload(result["error"]))

    def _reject(self, item: dict[str, Any], error: FleetflowError) -> None:
        self._rejections.append(error)
        target = item.get("task_run_id") or item.get("body", {}).get("id") or ""
        print(f"fleetflow: the server refused a deferred {item['op']} {target}: {type(error).__name__}: {error}",
              file=sys.stderr)  # fmt: skip

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="fleetflow-write-behind", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - e.g. the server down, or the client closed
                pass  # kept undelivered: the next flush (a caller's) re-sends it, or raises why not
