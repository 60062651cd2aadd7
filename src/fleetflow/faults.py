"""Named fault points: pause, freeze or kill this process at a named place (tests only).

Off unless ``FLEETFLOW_FAULT_POINTS`` is set, e.g. ``worker.after_start=kill`` or
``worker.after_claim=pause:2,runner.after_claim=kill``. The chaos suite uses them to die
exactly where a crash hurts most: after a claim, after starting a process but before saving
its handle, while watching. Actions:

* ``kill`` -- SIGKILL this process (no cleanup, like the OOM killer or a lost host);
* ``hang`` -- block forever (a frozen process; the test kills it);
* ``pause:<seconds>`` -- block that long, then go on.

Blocking is deliberate and synchronous: a frozen worker freezes its event loop too.
"""

from __future__ import annotations

import os
import signal
import time

POINTS = (
    "worker.after_claim",  # runs claimed (PENDING, leased), nothing launched
    "worker.after_start",  # infrastructure started, handle not yet saved
    "worker.during_watch",  # launches being watched
    "runner.after_claim",  # the runner moved its run to RUNNING, user code not yet started
    "server.before_commit",  # a request's writes and its ledger row are in its transaction, not committed
    "server.after_commit",  # the request's transaction committed, its response not yet sent
)


def parse(spec: str) -> dict[str, str]:
    """``'a=kill,b=pause:1'`` -> ``{'a': 'kill', 'b': 'pause:1'}``; unknown points are errors."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        point, _, action = item.partition("=")
        if point not in POINTS:
            raise ValueError(f"unknown fault point {point!r}; known points: {', '.join(POINTS)}")
        out[point] = action or "kill"
    return out


def fault(point: str) -> None:
    """Act on ``point`` if FLEETFLOW_FAULT_POINTS names it; otherwise do nothing (one env read)."""
    spec = os.environ.get("FLEETFLOW_FAULT_POINTS")
    if not spec:
        return
    action = parse(spec).get(point)
    if action is None:
        return
    marker = os.environ.get("FLEETFLOW_FAULT_MARKER")
    if marker:  # lets a test wait until the process really reached the point
        with open(marker, "a") as fh:
            fh.write(f"{point} {os.getpid()}\n")
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "hang":
        while True:
            time.sleep(3600)
    elif action.startswith("pause:"):
        time.sleep(float(action.split(":", 1)[1]))
    else:
        raise ValueError(f"unknown fault action {action!r} for {point}; use kill, hang or pause:<seconds>")
