"""The HTTP client marks its retries (``X-Request-Retry: 1``, same ``X-Request-Id``), and the
server answers a marked retry from its ledger. A real TCP proxy in front of a real server
forwards the first request, drops the server's answer and resets the client's connection --
the request was applied, the client does not know -- then lets the retry through."""

from __future__ import annotations

import socket
import threading
from typing import Iterator

import pytest

from fleetflow.client.http import HTTPClient
from fleetflow.orchestrator import Orchestrator
from fleetflow.server.serve import start_in_thread
from waiting import scaled


class LosesFirstAnswer:
    """127.0.0.1:<port the OS picked> -> ``target_port``; the first connection's answer is
    dropped (and the connection reset). Every byte clients send is kept in ``sent``."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self._connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._forward, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._answer, args=(upstream, client, self._connections == 1), daemon=True).start()

    def _forward(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    self.sent += data
                dst.sendall(data)
        except OSError:
            pass

    def _answer(self, src: socket.socket, dst: socket.socket, lose: bool) -> None:
        try:
            while data := src.recv(65536):
                if lose:  # the request was applied; its answer never arrives
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _reset(dst)
            _reset(src)

    def requests(self, path: bytes) -> list[dict[str, str]]:
        """The headers of each request to ``path`` that went through, in order."""
        out = []
        for chunk in bytes(self.sent).split(b"POST " + path + b" ")[1:]:
            head = chunk.split(b"\r\n\r\n", 1)[0].decode()
            out.append({k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:])})
        return out


def _reset(conn: socket.socket) -> None:
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
    except OSError:
        pass


@pytest.fixture
def store(store_url: str) -> Iterator[Orchestrator]:
    store = Orchestrator.create(store_url)
    yield store
    store.dispose()


def test_a_retry_is_marked_and_answered_from_the_ledger(store):
    _key, secret = store.create_api_key("marker", "admin")
    server = start_in_thread(store)
    proxy = LosesFirstAnswer(int(server.url.rsplit(":", 1)[1]))
    client = HTTPClient(f"http://127.0.0.1:{proxy.port}", api_key=secret, retry_seconds=scaled(60))
    try:
        run = client.create_flow_run("marked", id="run-marked")
    finally:
        client.close()
        proxy.close()
        server.stop()
    sent = proxy.requests(b"/api/v1/flow_runs")
    assert len(sent) == 2, sent  # the lost first attempt and the retry
    assert sent[0]["x-request-id"] == sent[1]["x-request-id"]
    assert "x-request-retry" not in sent[0] and sent[1].get("x-request-retry") == "1"
    assert run.id == "run-marked" and [r.id for r in store.read_flow_runs(flow_name="marked")] == ["run-marked"]
    assert store.count_remembered_requests() == 1
