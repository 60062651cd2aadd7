"""Running the app under uvicorn: ``fleetflow server start`` and the test harness.

* The socket is bound before uvicorn starts (``port=0`` picks a free port that is never
  released in between), so callers read the real port back.
* SIGTERM (and Ctrl-C) drain: uvicorn stops accepting connections and waits up to
  ``DRAIN_SECONDS`` for in-flight requests (long-polls included) before exiting.
* Secure by default: a non-loopback host needs auth, and a store with no keys gets an
  admin key on first start, printed once.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable

import uvicorn

from ..exceptions import ConfigurationError
from ..orchestrator.keys import Scope
from ..orchestrator.service import Orchestrator
from .app import create_app, server_context

DRAIN_SECONDS = 30
FIRST_KEY_NAME = "admin"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, auth: bool) -> None:
    """Refuse to serve a non-loopback address without authentication."""
    if not auth and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to serve {host!r} without authentication: anyone who can reach it could read secrets and "
            "launch runs. Drop --no-auth (clients then need API keys) or bind 127.0.0.1.",
            field="host",
        )


def ensure_first_key(store: Orchestrator) -> str | None:
    """On a store with no active keys, create the admin key and return it (shown once)."""
    if store.count_active_api_keys():
        return None
    name = FIRST_KEY_NAME
    existing = {k.name for k in store.read_api_keys()}
    suffix = 1
    while name in existing:
        suffix += 1
        name = f"{FIRST_KEY_NAME}-{suffix}"
    _key, secret = store.create_api_key(name, Scope.ADMIN)
    return secret


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0 = any free port), bound now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc}; pick another --port.", field="port") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def uvicorn_server(app: Any) -> uvicorn.Server:
    """uvicorn for ``app``: graceful drain on SIGTERM (signal handlers are installed only on
    the main thread, so a server thread in tests leaves the process's signals alone)."""
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=DRAIN_SECONDS, access_log=False,
                            lifespan="on", timeout_keep_alive=75)  # fmt: skip
    return uvicorn.Server(config)


def serve(store: Orchestrator, host: str, port: int, *, auth: bool = True, ui: bool = True,
          announce: Callable[[str, str | None], None] | None = None) -> None:  # fmt: skip
    """Serve until SIGTERM/SIGINT; ``announce(url, first_key)`` is called once listening.
    The web UI is served at ``/`` unless ``ui`` is False."""
    check_host(host, auth)
    first_key = ensure_first_key(store) if auth else None
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{bound_port}"
    if announce is not None:
        announce(url, first_key)
    _exit_cleanly_after_drain()
    uvicorn_server(create_app(store, auth=auth, ui_router=_ui() if ui else None)).run(sockets=[sock])


def _ui() -> Any:
    from .ui import ui_router

    return ui_router()


def _exit_cleanly_after_drain() -> None:
    """uvicorn re-raises the signal that stopped it once it has drained; with this handler
    that re-raise exits 0 instead of killing the process by the signal (and a signal that
    arrives before uvicorn takes over exits at once: nothing is in flight yet)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _exit_zero)


def _exit_zero(_sig: int, _frame: Any) -> None:
    raise SystemExit(0)


@dataclass
class RunningServer:
    """A server on a thread of this process (tests, benchmarks): ``url`` and ``stop()``."""

    url: str
    app: Any
    server: uvicorn.Server
    thread: threading.Thread

    def use_store(self, store: Orchestrator) -> None:
        server_context(self.app).use_store(store)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=DRAIN_SECONDS + 10)


def start_in_thread(store: Orchestrator, *, host: str = "127.0.0.1", auth: bool = True, ui: bool = False) -> RunningServer:
    """Start the app on ``host`` and a free port in a daemon thread; returns once it accepts
    (with the web UI at ``/`` when ``ui``)."""
    sock = bind(host, 0)
    app = create_app(store, auth=auth, ui_router=_ui() if ui else None)
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fleetflow-server", daemon=True)
    thread.start()
    _wait_started(server, thread)
    return RunningServer(url=f"http://{host}:{sock.getsockname()[1]}", app=app, server=server, thread=thread)


def _wait_started(server: uvicorn.Server, thread: threading.Thread, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fleetflow server thread did not start")
        time.sleep(0.01)
