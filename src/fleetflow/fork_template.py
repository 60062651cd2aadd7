"""The fork server's template: one warm, single-threaded process that forks a runner per run.

A fresh ``python -m fleetflow.runner`` spends ~0.4 s of CPU (more on a busy machine) starting
Python and importing SQLAlchemy, pydantic and fleetflow. The template does that once; for each
assignment it forks, and the child becomes exactly the process a cold start would have been --
its own session (so cancellation signals its whole process group), the full environment and
working directory the worker computed, output to the same places -- then runs the flow run and
exits through the normal interpreter shutdown. A fork costs milliseconds, so a wave of launches
no longer pays one start-up each.

Why the template stays safe to fork: it never opens the store (a SQLite connection must not be
carried across ``fork``), imports no user code, and starts no thread; before each fork it checks
it is still single-threaded and refuses the assignment otherwise (the worker then cold-starts).

The protocol, one JSON object per line on the socket the worker passed (:data:`SOCKET_FD_ENV`):
worker -> template ``{"op": "fork", "id": n, "flow_run_id", "env", "cwd", "stream_output"}``;
template -> worker ``{"ready": true}`` once, ``{"id": n, "pid": p}`` or ``{"id": n, "error": ...}``
per assignment, and ``{"exit": p, "code": c}`` when a child ends (``c`` as ``Popen.returncode``:
negative for a signal). The template exits when the worker closes its end; its children run on.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import threading
from typing import Any

SOCKET_FD_ENV = "FLEETFLOW_FORK_SERVER_FD"


def _preload() -> None:
    """Import everything a run touches, so a child starts with it in memory (shared pages).

    And nothing a run does not touch: every page of the template costs each child at its fork
    and at its exit (page tables: ~0.6 ms per 10 MB, measured). So no SQLAlchemy (~16 MB):
    a run's store calls, ``run_deployment`` included, are on the plain SQLite path; a run
    needing the full store imports it then, as a cold start would."""
    from . import bundles, client, entrypoints, flows, results  # noqa: F401  (runner: already running)
    from . import deployments  # noqa: F401  (a parent flow's run_deployment; ~27 ms in each child otherwise)
    from .blocks.base import load_builtin_blocks
    from .engine import flow_engine  # noqa: F401
    from .usage import recorder  # noqa: F401

    from .client import embedded, profile  # noqa: F401  (get_client imports them on first use)
    from .engine import parameter_fields
    from .orchestrator import lite_rehearsal

    lite_rehearsal.prepare_statements()  # a run claims, reads and reports on the plain SQLite path
    lite_rehearsal.rehearse_launch_path()  # and its children find that code warmed up (fewer copied pages)
    recorder.rehearse()
    parameter_fields.warm()  # a run validates its flow's parameters with these adapters
    load_builtin_blocks()
    _build_models()
    from .settings import get_settings

    # Read once here; a child whose settings variables are the same keeps them.
    if get_settings().api_url:  # the worker talks HTTP, so will its runs
        from .client import http  # noqa: F401
    import gc

    gc.collect()
    gc.freeze()  # the children's collections then skip (and so do not copy) the template's objects
    from .huge_pages import collapse_heap

    collapse_heap()  # fewer page-table entries for each fork to copy and each child to free


def _build_models() -> None:
    """Build fleetflow's deferred pydantic models now (``defer_build`` keeps them off a cold
    start's path to the first task; here they would otherwise be built again in every child)."""
    from pydantic import BaseModel

    pending, seen = list(BaseModel.__subclasses__()), set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("fleetflow.") and not cls.__pydantic_complete__:
            try:
                cls.model_rebuild()
            except Exception:  # noqa: BLE001 - a model that cannot build yet is built on use, as before
                pass


def exit_code(status: int) -> int:
    """A ``waitpid`` status as ``Popen.returncode`` would give it (pure)."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else status


class Template:
    """The template's loop: read assignments, fork, reap, report."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)  # SIGCHLD interrupts the select at once
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.sock.sendall((json.dumps(message) + "\n").encode())
        except OSError:
            pass  # the worker went away; the next read sees EOF

    def serve(self) -> dict[str, Any] | None:
        """Until the worker hangs up (returns None); in a forked child, its assignment."""
        self.send({"ready": True, "pid": os.getpid()})
        while True:
            self.reap()
            readable, _, _ = select.select([self.sock, self.wake_r], [], [], 1.0)
            if self.wake_r in readable:
                os.read(self.wake_r, 512)
            if self.sock not in readable:
                continue
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:  # the worker closed with bytes unread: it went away too
                return None
            if not chunk:
                return None
            self.buffer += chunk
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                assignment = self.handle(json.loads(line))
                if assignment is not None:
                    return assignment  # this is the child now

    def handle(self, message: dict[str, Any]) -> dict[str, Any] | None:
        if message.get("op") != "fork":
            self.send({"id": message.get("id"), "error": f"unknown operation {message.get('op')!r}"})
            return None
        if threading.active_count() > 1:  # forking a threaded process is not safe
            self.send({"id": message["id"], "error": f"the template has {threading.active_count()} threads"})
            return None
        try:
            pid = os.fork()
        except OSError as exc:
            self.send({"id": message["id"], "error": f"fork failed: {exc}"})
            return None
        if pid == 0:
            return message
        self.send({"id": message["id"], "pid": pid})
        return None

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.send({"exit": pid, "code": exit_code(status)})

    def become_child(self) -> None:
        """Drop everything of the template's: its socket, wake-up pipe and signal handlers."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(self.wake_r)
        self.sock.close()


SETTINGS_PREFIX = "FLEETFLOW_"


def setting_variables(settings_cls: Any) -> frozenset[str]:
    """The environment variables the settings read (prefix + field name, upper case)."""
    return frozenset(SETTINGS_PREFIX + name.upper() for name in settings_cls.model_fields)


def settings_unchanged(before: dict[str, str], after: dict[str, str], settings_variables: frozenset[str]) -> bool:
    """Whether settings read from ``before`` are still right for ``after`` (pure): only when
    every variable that differs is a FLEETFLOW_ one that is no setting (the run id, the launch
    token...). Any other difference, even one the settings might not read, means re-reading."""
    differing = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return all(k.upper().startswith(SETTINGS_PREFIX) and k.upper() not in settings_variables for k in differing)


def replace_environment(before: dict[str, str], after: dict[str, str]) -> None:
    """``os.environ`` becomes ``after``, changing only what differs (clearing and refilling it
    would call unsetenv/putenv for each of its variables in every run)."""
    for key in before.keys() - after.keys():
        del os.environ[key]
    for key, value in after.items():
        if before.get(key) != value:
            os.environ[key] = value


def become_run_process(assignment: dict[str, Any]) -> str:
    """In the forked child: the session, environment, working directory and output a cold start
    of this run would have; returns the flow run id."""
    os.setsid()  # its own process group: cancellation signals the whole tree, and only it
    from .settings import Settings, reset_settings

    fields = setting_variables(Settings)
    before = dict(os.environ)
    replace_environment(before, assignment["env"])
    if not settings_unchanged(before, assignment["env"], fields):
        reset_settings()  # else the template's settings, read from the very same variables, stand
    if assignment.get("cwd"):
        started_in = os.getcwd()
        os.chdir(assignment["cwd"])
        if sys.path and sys.path[0] == started_in:  # ``python -m`` put the start folder first
            sys.path[0] = os.getcwd()
    if not assignment.get("stream_output", True):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
    sys.argv = [sys.argv[0], assignment["flow_run_id"]]
    return assignment["flow_run_id"]


def exit_child(code: int) -> None:
    """End a forked child the way a cold start ends, minus tearing down the template's heap:
    wait for its non-daemon threads, run its atexit handlers (log and group-commit flushes),
    flush its output, then ``os._exit``. A full interpreter shutdown would touch every object
    the template imported and so copy the whole shared heap page by page (measured: ~0.2 s of
    CPU per run); nothing observable happens in it that the steps here leave out."""
    import atexit

    main_thread = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main_thread and not thread.daemon:
            thread.join()
    try:
        atexit._run_exitfuncs()  # the interpreter's own exit step (no public spelling)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def main() -> int | str:
    """``python -m fleetflow.runner --fork-server``: the template (returns when the worker hangs
    up), or, in each forked child, the flow run id it is to run (the caller runs it, so the
    child exits through the same path as a cold start)."""
    fd = os.environ.pop(SOCKET_FD_ENV, "")
    if not fd.isdigit():
        print(f"fleetflow fork server: {SOCKET_FD_ENV} is not set; the worker starts this process",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker stops it by closing the socket
    sock = socket.socket(fileno=int(fd))
    _preload()
    template = Template(sock)
    assignment = template.serve()
    if assignment is None:
        return 0
    template.become_child()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return become_run_process(assignment)
