"""The HTTP client when the server goes away: a running flow's state writes keep retrying
(and say so) until the server is back, applied once; other calls give up after their budget
with ServerUnavailable. The outage is a real TCP proxy in front of the real server that
resets every connection while it is "down"."""

from __future__ import annotations

import socket
import threading

import pytest

from fleetflow import states as st
from fleetflow.client.http import HTTPClient
from fleetflow.exceptions import ServerUnavailable
from fleetflow.orchestrator import Orchestrator
from waiting import scaled, wait_until


class FlakyProxy:
    """127.0.0.1:<port the OS picked> -> the server; ``down()`` resets connections."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.up = threading.Event()
        self.up.set()
        self.refused = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def down(self) -> None:
        self.up.clear()
        for conn in self._open:  # kill the client's keep-alive connections too
            _reset(conn)
        self._open.clear()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                self.refused += 1
                _reset(client)
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _reset(conn: socket.socket) -> None:
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
    except OSError:
        pass


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _reset(dst)


@pytest.fixture
def behind_proxy(api_server, tmp_path):
    store = Orchestrator.create(f"sqlite:///{tmp_path / 'outage.db'}")
    api_server.use_store(store)
    _key, secret = store.create_api_key("outage", "admin")
    proxy = FlakyProxy(int(api_server.url.rsplit(":", 1)[1]))
    yield proxy, secret, store
    proxy.close()
    store.dispose()


def test_a_state_write_survives_an_outage_and_is_applied_once(behind_proxy, capfd):
    proxy, secret, store = behind_proxy
    client = HTTPClient(f"http://127.0.0.1:{proxy.port}", api_key=secret, retry_seconds=0, outage_seconds=scaled(120))
    run = client.create_flow_run("f")
    proxy.down()
    outcome: list = []
    writer = threading.Thread(target=lambda: outcome.append(client.set_flow_run_state(run.id, st.Running())))
    writer.start()
    wait_until(lambda: proxy.refused >= 2, "the client to retry against the down server", observe=lambda: proxy.refused)
    assert writer.is_alive() and not outcome  # still retrying, not crashed
    proxy.up.set()
    writer.join(timeout=scaled(120))
    assert outcome and outcome[0].state.type is st.StateType.RUNNING
    assert [s.type for s in store.read_flow_run_states(run.id)] == [st.StateType.PENDING, st.StateType.RUNNING]
    assert "unreachable" in capfd.readouterr().err


def test_other_calls_give_up_after_their_budget(behind_proxy):
    proxy, secret, _store = behind_proxy
    client = HTTPClient(f"http://127.0.0.1:{proxy.port}", api_key=secret, retry_seconds=0.5)
    proxy.down()
    with pytest.raises(ServerUnavailable) as info:
        client.read_work_pools()
    assert "fleetflow server start" in str(info.value) and proxy.refused >= 1
