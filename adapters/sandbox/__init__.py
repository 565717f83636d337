"""Local stand-ins for the accounting systems we post to, which offer no sandbox of their own.

`billy` behaves like Billy's API v2 and `dinero` like Dinero's API, each a package with a
module per resource. What they share lives beside them: both read and check request fields
with `fields`, compute VAT, due dates and the day's rates with `accounting`, and build their
routes with `routes`. `faults` makes any sandbox misbehave on purpose, and `serving` runs a
sandbox on a real port in a background thread (for tests and scripts) so that clients talk to
it over real HTTP. `subledger sandbox billy` (or `dinero`) runs one in the foreground.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

#: How long `serving` waits for the server to start, and then to stop, in seconds.
_START_SECONDS = 10.0
_STOP_SECONDS = 10.0


@contextmanager
def serving(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` with uvicorn in a daemon thread; yield its base URL (`http://host:port`).

    Port 0 takes a free port: the socket is bound here, before the server starts, so the
    port is known without racing another process for it. On leaving, the server stops
    (answers still being written, e.g. slow ones, get up to a few seconds to finish).
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="sandbox-server", daemon=True
    )
    thread.start()
    try:
        _wait_until_started(server, thread)
        yield f"http://{host}:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(_STOP_SECONDS)
        listener.close()


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the sandbox server stopped while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox server did not start within {_START_SECONDS} s")
        time.sleep(0.01)
