"""``fleetflow server start`` as a real process (first admin key, refusing an open host
without auth, SIGTERM draining a long-poll), ``fleetflow api-key`` over HTTP and embedded,
and ``fleetflow login`` / ``logout``."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from fleetflow.client import get_client, reset_client
from fleetflow.client.http import HTTPClient
from fleetflow.exceptions import AuthenticationError
from fleetflow.settings import reset_settings
from waiting import scaled, wait_until

FLEETFLOW = [sys.executable, "-m", "fleetflow"]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*FLEETFLOW, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=scaled(120))  # fmt: skip


class ServerProcess:
    """``fleetflow server start --port 0`` with its announced URL and first key."""

    def __init__(self, home: Path, *args: str):
        env = {**os.environ, "FLEETFLOW_HOME": str(home)}
        self.proc = subprocess.Popen([*FLEETFLOW, "server", "start", "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(lambda: self.url or self.proc.poll() is not None, "the server to announce its URL", observe=lambda: self.lines)
        assert self.url, self.lines

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.append(line.rstrip())

    @property
    def url(self) -> str | None:
        found = [re.search(r"listening on (http://\S+)", line) for line in self.lines]
        return next((m.group(1) for m in found if m), None)

    @property
    def first_key(self) -> str | None:
        found = [re.search(r"FLEETFLOW_API_KEY=(\S+)", line) for line in self.lines]
        return next((m.group(1) for m in found if m), None)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=scaled(60))


@pytest.fixture
def server_process(tmp_path):
    server = ServerProcess(tmp_path / "server-home")
    yield server
    server.stop()


def test_first_start_prints_an_admin_key_once(tmp_path):
    home = tmp_path / "home"
    first = ServerProcess(home)
    key = wait_until(lambda: first.first_key, "the first admin key", observe=lambda: first.lines)
    admin = HTTPClient(first.url, api_key=key, retry_seconds=0)
    assert [k.name for k in admin.read_api_keys()] == ["admin"]
    admin.close()
    assert first.stop() == 0
    second = ServerProcess(home)  # same store: keys exist, nothing is printed
    try:
        assert second.first_key is None and key not in "\n".join(second.lines)
    finally:
        second.stop()


def test_an_open_host_without_auth_is_refused(tmp_path):
    result = _cli("server", "start", "--host", "0.0.0.0", "--no-auth", env={"FLEETFLOW_HOME": str(tmp_path)})
    assert result.returncode == 1
    assert "without authentication" in result.stdout + result.stderr


def test_sigterm_drains_a_long_poll_in_flight(server_process):
    admin = HTTPClient(server_process.url, api_key=server_process.first_key, retry_seconds=0)
    run = admin.create_flow_run("f")
    answers: list = []
    waiter = threading.Thread(target=lambda: answers.append(admin.wait_for_flow_run(run.id, timeout=3)))
    waiter.start()
    probe = httpx.Client(base_url=server_process.url, headers={"Authorization": f"Bearer {server_process.first_key}"})
    wait_until(lambda: probe.get("/api/ready").json()["in_flight"] >= 1, "the long-poll to reach the server")
    probe.close()
    server_process.proc.send_signal(signal.SIGTERM)
    waiter.join(timeout=scaled(60))
    assert answers and answers[0].id == run.id  # answered, not cut off
    assert server_process.stop() == 0


def test_api_keys_over_http_and_a_revoked_key_is_refused(server_process, tmp_path):
    env = {"FLEETFLOW_API_URL": server_process.url, "FLEETFLOW_API_KEY": server_process.first_key or ""}
    created = _cli("api-key", "create", "ci", "--scope", "run", "--expires", "30d", "--json", env=env)
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert body["name"] == "ci" and body["scope"] == "run" and body["key"].startswith("ffk_")
    listed = _cli("api-key", "ls", env=env)
    assert "ci" in listed.stdout and body["key"] not in listed.stdout and "run" in listed.stdout
    ci = HTTPClient(server_process.url, api_key=body["key"], retry_seconds=0)
    ci.read_work_pools()
    assert _cli("api-key", "revoke", "ci", env=env).returncode == 0
    with pytest.raises(AuthenticationError):
        ci.read_work_pools()


def test_api_keys_on_the_embedded_store(tmp_path):
    env = {"FLEETFLOW_HOME": str(tmp_path)}
    created = _cli("api-key", "create", "local", "--scope", "worker", "--json", env=env)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["scope"] == "worker"
    bad = _cli("api-key", "create", "x", "--scope", "superuser", env=env)
    assert bad.returncode == 1 and "read, run, worker, admin" in bad.stdout + bad.stderr


def test_login_saves_a_private_profile_that_clients_use(server_process, monkeypatch):
    home = Path(os.environ["FLEETFLOW_HOME"])
    result = _cli("login", "--url", server_process.url, "--key", server_process.first_key or "")
    assert result.returncode == 0, result.stdout + result.stderr
    profile = home / "profile.json"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    reset_settings()
    reset_client()
    client = get_client()
    assert isinstance(client, HTTPClient) and client.base_url == server_process.url
    assert _cli("login", "--url", server_process.url, "--key", "ffk_wrong").returncode == 1
    assert _cli("logout").returncode == 0 and not profile.exists()
