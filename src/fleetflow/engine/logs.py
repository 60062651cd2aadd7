"""Run logs: ``get_run_logger()``, ``print`` capture, and batched writes to the store.

Log lines are queued in memory and written in one transaction per batch by a background
thread (every ``FLEETFLOW_LOG_FLUSH_INTERVAL`` seconds or 200 lines), and flushed when a
run ends, so logging never costs a database round trip per line.
"""

from __future__ import annotations

import atexit
import builtins
import datetime as dt
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

from ..orchestrator.schemas import LogRecord
from ..settings import get_settings
from .context import flow_run_ctx, task_run_ctx

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

BATCH = 200


class LogShipper:
    """Collects log records and writes them to the store in batches."""

    def __init__(self) -> None:
        self._pending: list[tuple[Any, LogRecord]] = []
        self._lock = threading.Lock()
        # Held while a batch is being written, so a flush at run end waits for a batch the
        # background thread took a moment earlier instead of returning before it is stored.
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, client: OrchestratorAPI, record: LogRecord) -> None:
        with self._lock:
            self._pending.append((client, record))
            full = len(self._pending) >= BATCH
        self._ensure_thread()
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write everything queued so far (called when a run ends)."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            self._write(batch)

    def _write(self, batch: list[tuple[Any, LogRecord]]) -> None:
        by_client: dict[int, tuple[Any, list[LogRecord]]] = {}
        for client, rec in batch:
            by_client.setdefault(id(client), (client, []))[1].append(rec)
        for client, records in by_client.values():
            try:
                client.write_logs(records)
            except Exception as exc:  # logging must never break a run
                print(f"fleetflow: could not store {len(records)} log lines: {exc}", file=sys.stderr)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="fleetflow-logs", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        interval = get_settings().log_flush_interval
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            self.flush()


shipper = LogShipper()
atexit.register(shipper.flush)


class RunLogHandler(logging.Handler):
    """Sends records that carry a run id to the shipper."""

    def emit(self, record: logging.LogRecord) -> None:
        flow_run_id = getattr(record, "flow_run_id", None)
        client = getattr(record, "fleetflow_client", None)
        if not flow_run_id or client is None:
            return
        shipper.add(
            client,
            # model_construct: these fields are built right here, validation would only cost
            # time on the engine's hot path (several lines per task run).
            LogRecord.model_construct(
                id=None,
                flow_run_id=flow_run_id,
                task_run_id=getattr(record, "task_run_id", None),
                level=record.levelno,
                name=record.name,
                message=self.format(record),
                timestamp=dt.datetime.fromtimestamp(record.created, dt.timezone.utc),
            ),
        )


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        label = getattr(record, "run_label", "")
        ts = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        return f"{ts} | {record.levelname:<7} | {label} - {record.getMessage()}"


_console: list[logging.StreamHandler] = []  # the run loggers' console handler, once set up


def _setup_logger() -> logging.Logger:
    logger = logging.getLogger("fleetflow.runs")
    if not logger.handlers:
        handler = RunLogHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        console = logging.StreamHandler(sys.stderr)
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
    them on the engine's hot path. Other levels go through the ordinary run logger."""

    __slots__ = ("flow_run", "client", "task_run", "label")

    def __init__(self, flow_run: Any, client: Any, task_run: Any = None):
        self.flow_run, self.client, self.task_run = flow_run, client, task_run
        self.label = f"Task run {task_run.name!r}" if task_run is not None else f"Flow run {flow_run.name!r}"

    def info(self, message: str) -> None:
        logger = _setup_logger()
        if not logger.isEnabledFor(logging.INFO):
            return
        now = dt.datetime.now(dt.timezone.utc)
        shipper.add(self.client, LogRecord.model_construct(
            id=None, flow_run_id=self.flow_run.id, task_run_id=self.task_run.id if self.task_run is not None else None,
            level=logging.INFO, name=logger.name, message=message, timestamp=now))
        for console in _console:
            line = f"{now.astimezone().strftime('%H:%M:%S.%f')[:-3]} | INFO    | {self.label} - {message}\n"
            with console.lock:  # type: ignore[union-attr]
                console.stream.write(line)
                console.flush()

    def __getattr__(self, level: str) -> Any:  # warning, error, exception: the run logger
        return getattr(run_logger(self.flow_run, self.client, self.task_run), level)


def engine_logger() -> logging.LoggerAdapter:
    """Console-only lines about the engine itself (Prefect's ``prefect.engine`` logger)."""
    logger = _setup_logger()
    return RunLoggerAdapter(logger, {"run_label": "fleetflow.engine"})


_original_print = builtins.print


def _print(*args: Any, **kwargs: Any) -> None:
    """``print`` that becomes a run log line inside runs with ``log_prints=True``."""
    tctx, fctx = task_run_ctx.get(), flow_run_ctx.get()
    enabled = tctx.log_prints if tctx is not None else (fctx.log_prints if fctx is not None else False)
    if not enabled or kwargs.get("file") not in (None, sys.stdout):
        return _original_print(*args, **kwargs)
    sep = kwargs.get("sep", " ")
    get_run_logger().info((sep if sep is not None else " ").join(str(a) for a in args))


def install_print_capture() -> None:
    builtins.print = _print
