"""The fork server on its own (infrastructure/fork_server.py + fork_template.py), with a real
template process: it says ready, forks a child per assignment whose exit code comes back as
``Popen.returncode`` would give it, and exits when the worker hangs up; exit statuses are
translated like ``Popen`` does."""

from __future__ import annotations

import os
import signal

import pytest

from fleetflow.fork_template import exit_code, setting_variables, settings_unchanged
from fleetflow.infrastructure.fork_server import ForkServer, fork_available
from waiting import wait_until

pytestmark = pytest.mark.skipif(not fork_available(), reason="the fork server is Linux-only")


def _status_of(action) -> int:
    pid = os.fork()
    if pid == 0:
        action()
        os._exit(0)
    return os.waitpid(pid, 0)[1]


def test_exit_statuses_read_like_popen_returncodes():
    assert exit_code(_status_of(lambda: os._exit(3))) == 3
    assert exit_code(_status_of(lambda: os.kill(os.getpid(), signal.SIGKILL))) == -signal.SIGKILL


def test_a_child_keeps_the_templates_settings_only_when_no_setting_variable_differs():
    from fleetflow.settings import Settings

    fields = setting_variables(Settings)
    assert "FLEETFLOW_DATABASE_URL" in fields and "FLEETFLOW_FLOW_RUN_ID" not in fields
    base = {"PATH": "/bin", "FLEETFLOW_DATABASE_URL": "sqlite:///a.db"}
    run_only = {**base, "FLEETFLOW_FLOW_RUN_ID": "r1", "FLEETFLOW_LAUNCH_TOKEN": "t"}
    assert settings_unchanged(base, run_only, fields)
    assert not settings_unchanged(base, {**run_only, "FLEETFLOW_DATABASE_URL": "sqlite:///b.db"}, fields)
    assert not settings_unchanged(base, {**run_only, "FLEETFLOW_LOGGING_LEVEL": "DEBUG"}, fields)
    assert not settings_unchanged(base, {**run_only, "HOME": "/elsewhere"}, fields)  # e.g. ~ in paths
    assert not settings_unchanged(base, {"PATH": "/bin"}, fields)  # a setting unset for the run


@pytest.fixture
def server(tmp_path):
    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path), "FLEETFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}"}
    forks = ForkServer(env)
    yield forks, env
    template = forks.close()
    if template is not None:
        template.wait(timeout=60)


def test_a_child_is_forked_per_assignment_and_its_exit_code_comes_back(server, tmp_path):
    forks, env = server
    wait_until(forks.ready, "the template to finish its imports")
    # No such run in the store: the child's runner fails, exactly as a cold start would (exit 1).
    children = [forks.fork({"flow_run_id": f"missing-{i}", "env": env, "cwd": str(tmp_path), "stream_output": False})
                for i in range(2)]
    assert len({c.pid for c in children}) == 2 and forks.template_pid not in {c.pid for c in children}
    for child in children:
        assert child.wait(timeout=120) == 1
        assert not child.exit_code_lost()


def test_the_template_exits_when_the_worker_hangs_up(server):
    forks, _ = server
    wait_until(forks.ready, "the template to finish its imports")
    template = forks.close()
    assert template is not None and template.wait(timeout=60) == 0


def test_a_dead_template_is_replaced_and_its_running_child_counts_as_lost(server, tmp_path):
    import socket

    forks, env = server
    wait_until(forks.ready, "the template to finish its imports")
    # A server that accepts connections and never answers: the child's runner waits on it.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    stuck_env = {**env, "FLEETFLOW_API_URL": f"http://127.0.0.1:{silent.getsockname()[1]}", "FLEETFLOW_API_KEY": "x"}
    stuck = forks.fork({"flow_run_id": "stuck", "env": stuck_env, "cwd": str(tmp_path), "stream_output": False})
    try:
        first = forks.template_pid
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: not forks.alive(), "the template to die")
        assert stuck.poll() is None and stuck.exit_code_lost()  # only its pid can tell now
        forks.ensure_running()
        assert forks.template_pid != first
        wait_until(forks.ready, "the new template to finish its imports")
        child = forks.fork({"flow_run_id": "missing", "env": env, "cwd": str(tmp_path), "stream_output": False})
        assert child.wait(timeout=120) == 1
    finally:
        os.kill(stuck.pid, signal.SIGKILL)  # forked for this test; reaped by init (its template is gone)
        silent.close()


def test_the_template_exits_quietly_when_the_worker_goes_away_with_messages_unread(tmp_path):
    """A worker that stops without reading the template's last messages resets the socket
    (ECONNRESET on the template's side): that is a hang-up too, not a traceback in the
    worker's console."""
    import socket
    import subprocess
    import sys

    from fleetflow.fork_template import SOCKET_FD_ENV

    ours, theirs = socket.socketpair()
    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path), SOCKET_FD_ENV: str(theirs.fileno())}
    template = subprocess.Popen([sys.executable, "-m", "fleetflow.runner", "--fork-server"], env=env,
                                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    theirs.close()
    try:
        assert ours.recv(1, socket.MSG_PEEK)  # its "ready" is there, and stays unread
        ours.close()
        assert template.wait(timeout=120) == 0
        assert template.stderr.read().decode() == ""
    finally:
        if template.poll() is None:
            template.kill()
            template.wait()
