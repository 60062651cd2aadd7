"""The run loggers' console (engine/console.py): a terminal gets each line at once; a pipe or a
file gets the same lines, in the same order, in fewer writes, and never after the traceback of
a failed flow."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from fleetflow.engine.console import ConsoleHandler
from fleetflow.settings import reset_settings
from waiting import wait_until


class CountingStream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty
        self.writes = 0

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _interval(monkeypatch, seconds: str) -> None:
    monkeypatch.setenv("FLEETFLOW_CONSOLE_FLUSH_INTERVAL", seconds)
    reset_settings()


def _info(text: str) -> logging.LogRecord:
    return logging.LogRecord("fleetflow.runs", logging.INFO, __file__, 1, text, None, None)


def test_a_terminal_gets_each_line_as_it_is_made():
    stream = CountingStream(tty=True)
    handler = ConsoleHandler(stream)
    for i in range(3):
        handler.write(f"line {i}\n")
        assert stream.getvalue().endswith(f"line {i}\n")
    assert stream.writes == 3


def test_a_pipe_gets_the_same_lines_in_order_in_fewer_writes(monkeypatch):
    _interval(monkeypatch, "0.2")
    stream = CountingStream(tty=False)
    handler = ConsoleHandler(stream)
    lines = [f"line {i}\n" for i in range(200)]
    for line in lines:
        handler.write(line)
    wait_until(lambda: stream.getvalue() == "".join(lines), "the flusher's write")  # the flusher writes them, unasked
    assert stream.writes < len(lines) / 10


def test_a_warning_writes_what_is_pending_first_and_at_once(monkeypatch):
    _interval(monkeypatch, "60")
    stream = CountingStream(tty=False)
    handler = ConsoleHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.emit(_info("first"))
    handler.emit(_info("second"))
    assert stream.getvalue() == ""  # waiting for the interval
    warning = _info("careful")
    warning.levelno, warning.levelname = logging.WARNING, "WARNING"
    handler.emit(warning)
    assert stream.getvalue() == "INFO first\nINFO second\nWARNING careful\n"


def test_flush_and_a_new_stream_take_the_pending_lines(monkeypatch):
    _interval(monkeypatch, "60")
    old, new = CountingStream(tty=False), CountingStream(tty=False)
    handler = ConsoleHandler(old)
    handler.write("for the old stream\n")
    handler.setStream(new)
    handler.write("for the new one\n")
    handler.flush()
    assert (old.getvalue(), new.getvalue()) == ("for the old stream\n", "for the new one\n")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_does_not_repeat_its_parents_pending_lines(monkeypatch, tmp_path):
    _interval(monkeypatch, "60")
    path = tmp_path / "console.txt"
    with open(path, "w") as stream:
        handler = ConsoleHandler(stream)
        handler.write("parent before the fork\n")
        pid = os.fork()
        if pid == 0:  # the child
            try:
                handler.write("child\n")
                handler.flush()
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        handler.flush()
    assert path.read_text() == "parent before the fork\nchild\n"


FAILING = textwrap.dedent(
    """
    import sys
    from fleetflow import flow, task

    @task
    def step(i):
        return i

    @flow(name="console-order")
    def main():
        for i in range(50):
            step(i)
        print("from the flow body", file=sys.stderr)
        raise RuntimeError("boom")

    main()
    """
)


def test_a_failed_flow_prints_its_lines_in_order_and_before_the_traceback(temp_store, tmp_path):
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    env = {**os.environ, "FLEETFLOW_CONSOLE_FLUSH_INTERVAL": "60"}  # only the flushes at the run's end count
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 1
    err = out.stderr
    positions = [err.index(f"Task run 'step-{i}' - Finished in state Completed()") for i in range(50)]
    assert positions == sorted(positions)
    finished = err.index("Finished in state Failed('RuntimeError: boom')")
    # a print in the run writes the lines made before it first
    assert positions[-1] < err.index("from the flow body") < finished < err.rindex("Traceback (most recent call last)")
