"""Helpers of the browser tests: the module's server, logging in, script flows on named pipes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from waiting import scaled, wait_until

from fleetflow.orchestrator import Orchestrator
from fleetflow.server.serve import RunningServer
from fleetflow.states import StateType

FLOWS = Path(__file__).resolve().parent / "live_flows.py"


@dataclass
class Served:
    """The module's server, its store, an admin key and the env a script needs to use it."""

    server: RunningServer
    store: Orchestrator
    key: str
    home: Path

    @property
    def url(self) -> str:
        return self.server.url

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "FLEETFLOW_DATABASE_URL"}
        env.update(FLEETFLOW_HOME=str(self.home), FLEETFLOW_API_URL=self.url, FLEETFLOW_API_KEY=self.key,
                   FLEETFLOW_LOG_FLUSH_INTERVAL="0.2")  # fmt: skip
        return env


def login(page, served: Served) -> None:
    """Log in through the form (once per module: the profile keeps the session cookie)."""
    page.goto(f"{served.url}/runs")
    if "/login" in page.url:
        page.fill("#key", served.key)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/runs"))


class ScriptFlow:
    """A flow script running as its own process against the server, waiting on a named pipe."""

    def __init__(self, served: Served, kind: str, fifo: Path):
        os.mkfifo(fifo)
        if kind == "live":
            os.mkfifo(f"{fifo}.end")
        self.fifo, self.served = fifo, served
        self.proc = subprocess.Popen([sys.executable, str(FLOWS), kind, str(fifo)], env=served.env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip

    def running(self, flow_name: str) -> str:
        """The id of this script's run of ``flow_name`` once it is RUNNING."""
        def find():
            if self.proc.poll() is not None:
                raise AssertionError(f"the script exited early: {self.proc.stdout.read()}")
            runs = self.served.store.read_flow_runs(flow_name=flow_name, state_types=[StateType.RUNNING], limit=1)
            return runs[0].id if runs else None

        return wait_until(find, f"a RUNNING {flow_name} run")

    def send(self, line: str, pipe: str | None = None) -> None:
        with open(pipe or self.fifo, "w") as out:
            out.write(line + "\n")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # only the process this test started, by its handle
        self.proc.wait(timeout=scaled(30))
        self.proc.stdout.close()
