"""moto's server over HTTPS (a throw-away self-signed certificate), for checks that depend on the
transport, e.g. a bucket policy conditioned on ``aws:SecureTransport``.

``ThreadedMotoServer`` takes no TLS arguments, so this starts the same WSGI app moto's server
runs (``DomainDispatcherApplication(create_backend_app)`` with ``MotoRequestHandler``, see
``moto/moto_server/threaded_moto_server.py``) under werkzeug's ``make_server(ssl_context=...)``.
Clients must skip certificate verification (``verify=False`` for boto3).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def tls_moto_server(host: str = "127.0.0.1") -> Iterator[str]:
    """moto on ``https://host:<free port>``; yields the URL, stops the server afterwards."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    # "adhoc": werkzeug generates a self-signed certificate with `cryptography` in memory.
    server = make_server(host, 0, app, threaded=True, request_handler=MotoRequestHandler, ssl_context="adhoc")
    thread = threading.Thread(target=server.serve_forever, name="tls-moto", daemon=True)
    thread.start()
    try:
        yield f"https://{host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
