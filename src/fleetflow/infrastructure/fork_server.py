"""The worker's side of the fork server (see :mod:`fleetflow.fork_template`).

:class:`ForkServer` starts the template (``python -m fleetflow.runner --fork-server``), hands it
one assignment per launch and gets back the child's pid; the template reaps its children and
reports their exit codes, which :class:`ForkedProcess` (a small ``Popen`` look-alike) returns.
If the template dies it is replaced at the next launch; children it had forked run on, and
their exits are then judged by the pid's liveness alone (``exit_code_lost``), like any launch
whose exit code nobody saw.

:func:`fork_available` says where forking is used at all: POSIX with ``os.fork``, and Linux
only (macOS system frameworks are not fork-safe without an exec).
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from typing import Any

from ..exceptions import LaunchError

REPLY_TIMEOUT_SECONDS = 30.0  # a fork takes milliseconds; this only bounds a wedged template


def fork_available() -> bool:
    """Whether launches may fork from a template on this platform."""
    return hasattr(os, "fork") and sys.platform.startswith("linux")


class ForkedProcess:
    """A run's process forked by the template: pid, and its exit code once reported."""

    def __init__(self, pid: int, server: "ForkServer"):
        self.pid = pid
        self.returncode: int | None = None
        self._server = server

    def poll(self) -> int | None:
        self._server.pump()
        return self.returncode

    def exit_code_lost(self) -> bool:
        """The template died before reporting this exit: only liveness can tell (by the pid)."""
        return self.returncode is None and self._server.generation_dead(self)

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None and not self.exit_code_lost():
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"forked runner {self.pid}", timeout or 0)
            self._server.pump(wait=0.05)
        return self.returncode


class ForkServer:
    """One template process and the children it forked for this worker."""

    def __init__(self, env: dict[str, str]):
        self._env = env
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._ready = False
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._born_of: dict[int, int] = {}  # child pid -> template pid that forked it
        self.start()

    # ---- the template ---------------------------------------------------------------------
    def start(self) -> None:
        """Start a (new) template; it says ready once its imports are done."""
        ours, theirs = socket.socketpair()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "fleetflow.runner", "--fork-server"], stdin=subprocess.DEVNULL,
                env={**self._env, "FLEETFLOW_FORK_SERVER_FD": str(theirs.fileno())},
                pass_fds=(theirs.fileno(),), start_new_session=True,
            )
        finally:
            theirs.close()
        self._sock, self._buffer, self._ready = ours, b"", False

    @property
    def template_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ready(self) -> bool:
        """Whether the template finished its imports (checked without waiting)."""
        self.pump()
        return self._ready and self.alive()

    def ensure_running(self) -> None:
        """Replace a template that died (its children keep running)."""
        if not self.alive():
            while self._sock is not None:  # exits it reported before dying still count
                self.pump(wait=0.0) if select.select([self._sock], [], [], 0)[0] else self._drop_socket()
            self.start()

    def fileno(self) -> int | None:
        """The socket the template reports on (readable when a child exited), if connected."""
        return self._sock.fileno() if self._sock is not None else None

    def generation_dead(self, child: ForkedProcess) -> bool:
        return self._born_of.get(child.pid) != self.template_pid or not self.alive()

    # ---- forking --------------------------------------------------------------------------
    def fork(self, assignment: dict[str, Any], *, timeout: float = REPLY_TIMEOUT_SECONDS) -> ForkedProcess:
        """Hand one assignment over; the child's process (raises LaunchError if the template
        refused or died: the caller cold-starts instead)."""
        self._next_id += 1
        request_id = self._next_id
        self._send({"op": "fork", "id": request_id, **assignment})
        reply = self._await_reply(request_id, timeout)
        if "pid" not in reply:
            raise LaunchError(f"the fork server refused the launch: {reply.get('error')}")
        child = ForkedProcess(int(reply["pid"]), self)
        self._children[child.pid] = child
        self._born_of[child.pid] = self.template_pid  # type: ignore[assignment]
        return child

    def _send(self, message: dict[str, Any]) -> None:
        try:
            assert self._sock is not None
            self._sock.sendall((json.dumps(message) + "\n").encode())
        except (OSError, AssertionError) as exc:
            raise LaunchError(f"the fork server is gone: {exc}") from exc

    def _await_reply(self, request_id: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while request_id not in self._replies:
            if not self.alive():
                raise LaunchError("the fork server died before answering")
            if time.monotonic() > deadline:
                raise LaunchError(f"the fork server did not answer within {timeout:.0f} s")
            self.pump(wait=min(0.5, max(0.0, deadline - time.monotonic())))
        return self._replies.pop(request_id)

    # ---- messages -------------------------------------------------------------------------
    def pump(self, wait: float = 0.0) -> None:
        """Read whatever the template sent (up to ``wait`` seconds for something)."""
        if self._sock is None:
            return
        readable, _, _ = select.select([self._sock], [], [], wait)
        if not readable:
            return
        try:
            chunk = self._sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self._drop_socket()
            return
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self._on_message(json.loads(line))

    def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("ready"):
            self._ready = True
        elif "exit" in message:
            child = self._children.pop(int(message["exit"]), None)
            self._born_of.pop(int(message["exit"]), None)
            if child is not None:
                child.returncode = int(message["code"])
        elif "id" in message:
            self._replies[int(message["id"])] = message

    def _drop_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> subprocess.Popen | None:
        """Hang up: the template exits (its children run on); its process, for the caller to reap."""
        self._drop_socket()
        return self._proc
