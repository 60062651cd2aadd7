"""Flows the browser scenarios run as real script processes against the test's server.

    python live_flows.py live FIFO     a parent whose in-process child logs, then waits for a
                                       line on FIFO and logs it (the live-tail scenario)
    python live_flows.py sleepy FIFO   a flow that waits on FIFO until it is cancelled

Waiting is a blocking read of a named pipe: no polling, and SIGTERM (a cancel) interrupts it.
"""

from __future__ import annotations

import sys

from fleetflow import flow, get_run_logger


def _read_line(fifo: str) -> str:
    with open(fifo) as pipe:  # blocks until the test opens the pipe for writing
        return pipe.readline().strip()


@flow(name="live-child")
def live_child(fifo: str) -> str:
    logger = get_run_logger()
    logger.info("child started; waiting for the test to send a line")
    line = _read_line(fifo)
    logger.info(f"the live line: {line}")
    _read_line(fifo + ".end")
    return line


@flow(name="live-parent")
def live_parent(fifo: str) -> str:
    return live_child(fifo)


@flow(name="sleepy")
def sleepy(fifo: str) -> None:
    get_run_logger().info("sleeping until cancelled")
    _read_line(fifo)


if __name__ == "__main__":
    {"live": live_parent, "sleepy": sleepy}[sys.argv[1]](sys.argv[2])
