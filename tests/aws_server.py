"""A real moto server for tests and benchmarks, plus helpers to count AWS requests.

Plain classes and functions (no pytest imports) so any test directory, benchmark or script can
use them: ``from aws_server import MotoServer`` (``tests/`` is on ``sys.path`` under pytest;
benchmarks add it themselves). The ``moto_server`` and ``aws_env`` fixtures of
``tests/integration/aws/conftest.py`` and ``tests/e2e/conftest.py`` are the generator
functions at the end of this module, registered there with ``pytest.fixture``.

Moto runs in server mode (``ThreadedMotoServer``) and clients reach it via ``endpoint_url``,
exactly as they would reach AWS; nothing in moto is patched.
http://docs.getmoto.org/en/latest/docs/server_mode.html
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterator

from waiting import scaled

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Variables that would steer a client away from the fake server or the dummy keys.
INTERFERING_ENV = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_ECS",
    "AWS_REGION",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


class MotoServer:
    """moto's ``ThreadedMotoServer`` on 127.0.0.1 and a free port (``with MotoServer() as s:``)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._server: Any = None
        self.url = ""

    def start(self) -> "MotoServer":
        from moto.server import ThreadedMotoServer

        # werkzeug logs one line per request; thousands of them bury test output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # Port 0: the OS picks a free port at bind time, so parallel test workers never clash.
        self._server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def reset(self) -> None:
        """Forget every bucket, object, cluster and task (moto's reset API)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=scaled(60)) as response:
            response.read()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def use_dummy_aws_env(monkeypatch: Any, tmp_dir: Any = None) -> None:
    """Dummy keys and region in the environment, and nothing that could reach real AWS.

    ``monkeypatch`` is pytest's fixture (anything with ``setenv``/``delenv``). The shared
    config and credentials files point at empty paths so a developer's ~/.aws is never read.
    """
    for name in INTERFERING_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in DUMMY_ENV.items():
        monkeypatch.setenv(name, value)
    empty = str(tmp_dir) if tmp_dir is not None else "/nonexistent"
    monkeypatch.setenv("AWS_CONFIG_FILE", f"{empty}/aws-config-none")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", f"{empty}/aws-credentials-none")


def server_env(url: str) -> dict[str, str]:
    """Environment for a *subprocess* (e.g. a launched flow run) to reach the fake server:
    botocore, aiobotocore and s3fs all honour ``AWS_ENDPOINT_URL``.
    https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html"""
    return {**DUMMY_ENV, "AWS_ENDPOINT_URL": url}


def credentials_for(url: str, **fields: Any) -> Any:
    """An ``AwsCredentials`` block aimed at the fake server (extra fields override)."""
    from fleetflow.aws.credentials import AwsCredentials

    params = {"endpoint_url": url, **fields.pop("aws_client_parameters", {})}
    return AwsCredentials(**{"region_name": "us-east-1", "aws_client_parameters": params, **fields})


def boto3_client(url: str, service: str, region: str = "us-east-1") -> Any:
    """A plain boto3 client on the fake server with dummy keys (for test setup and checks)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=DUMMY_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def create_bucket(url: str, name: str, region: str = "us-east-1") -> None:
    boto3_client(url, "s3", region).create_bucket(Bucket=name)


class RequestCounter:
    """Counts HTTP requests a botocore/aiobotocore client sends, by operation name.

    Hooks ``before-send``, which fires once per attempt actually put on the wire (so
    botocore's own retries count too). ``before-send`` handlers may also return a response
    to short-circuit the send; :meth:`fail_next` uses that to inject a real error response.
    https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._failures: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def attach(self, client: Any) -> "RequestCounter":
        """Listen on ``client`` (a boto3 client, an aiobotocore client, or ``s3fs_fs.s3``)."""
        service = client.meta.service_model.service_id.hyphenize()
        is_async = any(cls.__module__.startswith("aiobotocore") for cls in type(client).__mro__)

        def on_send(request: Any, event_name: str, **kwargs: Any) -> Any:
            return self._on_send(request, event_name, is_async)

        client.meta.events.register(f"before-send.{service}", on_send, unique_id=f"counter-{id(self)}")
        return self

    def detach(self, client: Any) -> None:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.unregister(f"before-send.{service}", unique_id=f"counter-{id(self)}")

    def fail_next(self, operation: str, status: int = 503, code: str = "SlowDown", times: int = 1) -> None:
        """Answer the next ``times`` attempts of ``operation`` with an S3-style error response
        (parsed by botocore exactly like one from S3) instead of sending them."""
        with self._lock:
            self._failures.extend([(operation, (status, code))] * times)

    def raise_next(self, operation: str, error: BaseException, times: int = 1) -> None:
        """Make the next ``times`` attempts of ``operation`` fail with ``error`` at the send, the
        way a refused or dropped connection does. aiobotocore hands any exception raised here
        to its retry handler like a real send failure; plain botocore only does so for
        ``HTTPClientError`` subclasses."""
        with self._lock:
            self._failures.extend([(operation, error)] * times)

    def __getitem__(self, operation: str) -> int:
        return self.counts[operation]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _on_send(self, request: Any, event_name: str, is_async: bool) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.counts[operation] += 1
            failure = next((f for f in self._failures if f[0] == operation), None)
            if failure is not None:
                self._failures.remove(failure)
        if failure is None:
            return None
        if isinstance(failure[1], BaseException):
            raise failure[1]
        status, code = failure[1]
        return _error_response(request, status, code, is_async)


def _error_response(request: Any, status: int, code: str, is_async: bool) -> Any:
    """A real HTTP-shaped error response, parsed by botocore like one from S3."""
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>injected by the test</Message><RequestId>test</RequestId></Error>"
    ).encode()
    headers = {"Content-Type": "application/xml", "Content-Length": str(len(body))}
    if is_async:
        from aiobotocore.awsrequest import AioAWSResponse

        return AioAWSResponse(request.url, status, headers, _AsyncRaw(body))
    from botocore.awsrequest import AWSResponse

    return AWSResponse(request.url, status, headers, _SyncRaw(body))


class _SyncRaw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


class _AsyncRaw:
    """Just enough of an aiohttp response for aiobotocore to read an error body."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.content = self

    async def read(self, *args: Any) -> bytes:
        body, self._body = self._body, b""
        return body


@contextmanager
def counting(client: Any) -> Iterator[RequestCounter]:
    """``with counting(client) as requests: ...; assert requests["PutObject"] == 1``."""
    counter = RequestCounter().attach(client)
    try:
        yield counter
    finally:
        counter.detach(client)


# ---- fixture bodies ----------------------------------------------------------------------
# Plain generator functions, registered as fixtures by each conftest that wants them, e.g.
#     moto_server = pytest.fixture(moto_server_fixture, scope="session", name="moto_server")
#     aws_env = pytest.fixture(aws_env_fixture, name="aws_env")
# Their parameters are named after the pytest fixtures they receive.
def moto_server_fixture() -> Iterator[MotoServer]:
    """One moto server per test session (per xdist worker), on a free port."""
    with MotoServer() as server:
        yield server


def aws_env_fixture(moto_server: MotoServer, monkeypatch: Any, tmp_path: Any) -> Iterator[MotoServer]:
    """Dummy AWS keys and region in the environment, an empty moto, and no cached clients."""
    from fleetflow.aws.credentials import clear_client_cache

    use_dummy_aws_env(monkeypatch, tmp_path)
    moto_server.reset()
    clear_client_cache()
    yield moto_server
    clear_client_cache()
