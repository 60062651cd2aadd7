"""`fleetflow server start` serves the web UI at / by default: a real server process on
127.0.0.1, logged into with the admin key it printed on first start."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import httpx
from waiting import scaled, wait_until


def test_server_start_serves_the_ui_at_the_root(tmp_path):
    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "fleetflow", "server", "start", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip() for line in proc.stdout), daemon=True).start()
    try:
        joined = lambda: "\n".join(lines)  # noqa: E731
        key = wait_until(lambda: re.search(r"FLEETFLOW_API_KEY=(\S+)", joined()), "the first admin key", observe=joined).group(1)
        url = re.search(r"listening on (http://\S+) ", joined()).group(1)
        assert f"web UI at {url}/" in joined()
        with httpx.Client(base_url=url, timeout=scaled(30)) as browser:
            assert browser.get("/").headers["location"] == "/runs"
            assert browser.get("/runs").headers["location"].startswith("/login")
            assert browser.post("/login", data={"key": key}).status_code == 303
            page = browser.get("/runs")
            assert page.status_code == 200 and "Flow runs" in page.text and "admin" in page.text
            assert browser.get("/static/htmx.min.js").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)  # the process this test started
        assert proc.wait(timeout=scaled(60)) == 0
