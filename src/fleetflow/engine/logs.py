"""Run logs: ``get_run_logger()``, ``print`` capture, and batched writes to the store.

Log lines are queued in memory and written in one transaction per batch by a background
thread (every ``FLEETFLOW_LOG_FLUSH_INTERVAL`` seconds or 1000 lines), and flushed when a
run ends, so logging never costs a database round trip per line. A queued line is a plain
tuple (:data:`Row`); the store's ``LogRecord`` models are made by the background thread.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import datetime as dt
import logging
import os
import sys
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ..orchestrator.pid import current_pid
from ..orchestrator.schemas import LogRecord
from ..settings import get_settings
from ..states import construct
from .console import CALLER_FLUSHES, ConsoleHandler
from .context import flow_run_ctx, task_run_ctx
from .grouping import by_client

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

BATCH = 1000

# One queued line: (flow_run_id, task_run_id, level, logger name, message, time.time()).
Row = tuple[str, "str | None", int, str, str, float]
_UTC = dt.timezone.utc


def log_record(row: Row) -> LogRecord:
    """The store's model of a queued line (built without validation: the engine made it)."""
    flow_run_id, task_run_id, level, name, message, created = row
    return construct(LogRecord, {"id": None, "flow_run_id": flow_run_id, "task_run_id": task_run_id, "level": level,
                                 "name": name, "message": message,
                                 "timestamp": dt.datetime.fromtimestamp(created, _UTC)})


class LogShipper:
    """Collects log lines and writes them to the store in batches."""

    def __init__(self) -> None:
        # Appended to without a lock (deque.append is atomic): every task thread logs at once.
        self._pending: deque[tuple[Any, Row]] = deque()
        self._lock = threading.Lock()  # starting the thread
        # Held while a batch is being written, so a flush at run end waits for a batch the
        # background thread took a moment earlier instead of returning before it is stored.
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0  # the process that started the thread (a forked child starts its own)

    def add(self, client: OrchestratorAPI, *rows: Row) -> None:
        """Queue lines (see :data:`Row`)."""
        pending = self._pending
        for row in rows:
            pending.append((client, row))
        full = len(pending) >= BATCH
        if self._pid != current_pid() and not CALLER_FLUSHES.get():
            self._ensure_thread()
        if full and not self._wake.is_set():
            self._wake.set()

    def flush(self) -> None:
        """Write everything queued so far (called when a run ends)."""
        with self._write_lock:
            pending = self._pending
            batch = [pending.popleft() for _ in range(len(pending))]  # lines added meanwhile: the next batch
            if batch:
                self._write(batch)

    def _write(self, batch: list[tuple[Any, Row]]) -> None:
        for client, rows in by_client(batch):
            try:
                write_rows = getattr(client, "write_log_rows", None)  # the embedded store's fast path
                if write_rows is not None:
                    write_rows(rows)
                else:
                    client.write_logs([log_record(row) for row in rows])
            except Exception as exc:  # logging must never break a run
                print(f"fleetflow: could not store {len(rows)} log lines: {exc}", file=sys.stderr)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._pid == current_pid() and self._thread is not None and self._thread.is_alive():
                return
            self._pid = current_pid()
            self._thread = threading.Thread(target=self._loop, name="fleetflow-logs", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        interval = get_settings().log_flush_interval
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            self.flush()


    def forget_after_fork(self) -> None:
        """In a forked child: the parent's queued lines are the parent's to store (the child
        would store them a second time), and a lock its shipper thread held at the fork would
        never be released here."""
        self._pending = deque()
        self._lock, self._write_lock, self._wake = threading.Lock(), threading.Lock(), threading.Event()
        self._thread = None


shipper = LogShipper()
atexit.register(shipper.flush)
os.register_at_fork(after_in_child=shipper.forget_after_fork)


class RunLogHandler(logging.Handler):
    """Sends records that carry a run id to the shipper."""

    def emit(self, record: logging.LogRecord) -> None:
        flow_run_id = getattr(record, "flow_run_id", None)
        client = getattr(record, "fleetflow_client", None)
        if not flow_run_id or client is None:
            return
        shipper.add(client, (flow_run_id, getattr(record, "task_run_id", None), record.levelno, record.name,
                             self.format(record), record.created))


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        label = getattr(record, "run_label", "")
        ts = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        return f"{ts} | {record.levelname:<7} | {label} - {record.getMessage()}"


_console: list[ConsoleHandler] = []  # the run loggers' console handler, once set up


def _setup_logger() -> logging.Logger:
    logger = logging.getLogger("fleetflow.runs")
    _runs_logger[:] = [logger]
    if not logger.handlers:
        handler = RunLogHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        console = ConsoleHandler(sys.stderr)
        console.setFormatter(_ConsoleFormatter())
        logger.addHandler(console)
        _console[:] = [console]
        logger.propagate = False
    level = get_settings().logging_level
    if logger.level != logging.getLevelName(str(level).upper()):
        logger.setLevel(level)  # setLevel clears logging's caches: only when it changes
    return logger


class RunLoggerAdapter(logging.LoggerAdapter):
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return msg, kwargs


def get_run_logger() -> logging.LoggerAdapter:
    """A logger whose lines are stored with the current flow/task run.

    Outside a run it returns a plain logger that only prints, so library code can call it
    unconditionally.
    """
    fctx, tctx = flow_run_ctx.get(), task_run_ctx.get()
    if fctx is None:
        return RunLoggerAdapter(logging.getLogger("fleetflow"), {})
    return run_logger(fctx.flow_run, fctx.client, tctx.task_run if tctx is not None else None)


def run_logger(flow_run: Any, client: OrchestratorAPI, task_run: Any = None) -> logging.LoggerAdapter:
    """The logger of one given flow run (or of one of its task runs), without a context."""
    logger = _setup_logger()
    extra: dict[str, Any] = {"flow_run_id": flow_run.id, "fleetflow_client": client}
    if task_run is not None:
        extra["task_run_id"] = task_run.id
        extra["run_label"] = f"Task run {task_run.name!r}"
    else:
        extra["run_label"] = f"Flow run {flow_run.name!r}"
    return RunLoggerAdapter(logger, extra)


class EngineLog:
    """The engine's own INFO lines about one run ("Created task run ...", "Finished in state
    ..."): stored and printed exactly like run-logger lines, but without building a
    ``logging.LogRecord`` (caller lookup, path parsing), since a task run writes several of
    them on the engine's hot path: one tuple for the shipper and one line for the console
    (:mod:`.console` batches them off a terminal). Other levels go through the ordinary run logger."""

    __slots__ = ("flow_run", "client", "task_run", "label", "_ids")

    def __init__(self, flow_run: Any, client: Any, task_run: Any = None):
        self.flow_run, self.client, self.task_run = flow_run, client, task_run
        self.label = f"Task run {task_run.name!r}" if task_run is not None else f"Flow run {flow_run.name!r}"
        self._ids = (flow_run.id, task_run.id if task_run is not None else None)

    def info(self, *messages: str) -> None:
        """One INFO line per message, taken at one moment; printed together."""
        if not _info_enabled():
            return
        now = time.time()
        flow_run_id, task_run_id = self._ids
        shipper.add(self.client, *[(flow_run_id, task_run_id, logging.INFO, "fleetflow.runs", message, now)
                                   for message in messages])
        if _console:
            prefix = f"{_clock(now)} | INFO    | {self.label} - "
            line = "".join(f"{prefix}{message}\n" for message in messages) if len(messages) > 1 else f"{prefix}{messages[0]}\n"
            for console in _console:
                console.write(line)

    def __getattr__(self, level: str) -> Any:  # warning, error, exception: the run logger
        return getattr(run_logger(self.flow_run, self.client, self.task_run), level)


# (what the answer depends on, whether INFO lines are on): one tuple, replaced whole.
_checked: list[tuple[Any, bool]] = [(None, False)]


def _info_enabled() -> bool:
    """``_setup_logger().isEnabledFor(INFO)``, worked out again only when what it depends on
    changes: the settings object (``reset_settings``), the run logger's level, ``logging.disable``."""
    logger = _runs_logger[0] if _runs_logger else None
    key = (get_settings(), logger.level if logger is not None and logger.handlers else None, logging.root.manager.disable)
    seen, enabled = _checked[0]
    if key != seen:
        logger = _setup_logger()
        enabled = logger.isEnabledFor(logging.INFO)
        _checked[0] = ((key[0], logger.level, logging.root.manager.disable), enabled)
    return enabled


_runs_logger: list[logging.Logger] = []
_second: list[tuple[Any, str]] = [(None, "")]  # (the last whole second formatted, its "HH:MM:SS")


def _clock(now: float) -> str:
    """Local ``HH:MM:SS.mmm`` of ``now`` (the console's timestamp), one strftime per second."""
    second = int(now)
    seen, text = _second[0]
    if second != seen:
        text = time.strftime("%H:%M:%S", time.localtime(second))
        _second[0] = (second, text)
    return f"{text}.{int((now - second) * 1000):03d}"


def engine_logger() -> logging.LoggerAdapter:
    """Console-only lines about the engine itself (Prefect's ``prefect.engine`` logger)."""
    logger = _setup_logger()
    return RunLoggerAdapter(logger, {"run_label": "fleetflow.engine"})


_original_print = builtins.print


def _print(*args: Any, **kwargs: Any) -> None:
    """``print`` that becomes a run log line inside runs with ``log_prints=True`` (any other
    ``print`` comes after the run lines made before it)."""
    tctx, fctx = task_run_ctx.get(), flow_run_ctx.get()
    enabled = tctx.log_prints if tctx is not None else (fctx.log_prints if fctx is not None else False)
    if not enabled or kwargs.get("file") not in (None, sys.stdout):
        flush_console()
        return _original_print(*args, **kwargs)
    sep = kwargs.get("sep", " ")
    get_run_logger().info((sep if sep is not None else " ").join(str(a) for a in args))


@contextlib.contextmanager
def flushed_here() -> Any:
    """Lines logged inside are stored and printed when the block ends, by this thread.

    For a run's last lines ("Finished in state ..."): a short run process -- a forked sub-flow
    run -- would otherwise start the shipper's and the console's threads for one line just
    before it exits, and each thread a process starts costs it ~0.8 ms of system time (see
    :mod:`fleetflow.ticker`). Lines logged elsewhere meanwhile are written at the end too."""
    token = CALLER_FLUSHES.set(True)
    try:
        yield
    finally:
        CALLER_FLUSHES.reset(token)
        shipper.flush()
        flush_console()


def flush_console() -> None:
    """Write the console lines still pending (see :mod:`.console`)."""
    for console in _console:
        console.flush()


def install_print_capture() -> None:
    builtins.print = _print
