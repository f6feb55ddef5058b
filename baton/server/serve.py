"""``baton server``: the event and task communication servers in one process (uvicorn, one
worker process; the store's calls run in its thread pool).

Plain HTTP is for loopback: binding any other address needs a certificate and key (HTTPS), or
an explicit ``allow_plain_http`` for a server behind a TLS-terminating proxy on the same host.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import socket
import sys
from collections.abc import Callable
from types import FrameType

from baton.errors import UsageError
from baton.settings import Settings
from baton.store.protocol import Store

log = logging.getLogger("baton.server")
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8470
KEEP_ALIVE_S = 75.0  # longer than a long poll, so idle workers keep their connections
SWITCH_INTERVAL_S = 0.001
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
BACKLOG = 2048  # connections the kernel holds before the server accepts them


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(host: str, cert: str | None, key: str | None, allow_plain_http: bool) -> None:
    if (cert is None) != (key is None):
        raise UsageError("HTTPS needs both --cert and --key")
    if cert is None and not is_loopback(host) and not allow_plain_http:
        raise UsageError(
            f"refusing plain HTTP on {host}: tokens would cross the network in clear. Give --cert and --key "
            "for HTTPS, or --allow-plain-http behind a TLS-terminating proxy"
        )


def keep_large_blocks() -> None:
    """Keep freed blocks of up to 32 MiB in the heap (glibc only). A parsed body's text is one
    block of its length: fresh from the kernel each time, its pages were faulted in while the
    GIL was held (a tenth of a second for 16 MiB on a busy machine, every request stalled
    behind it); reused, they are already there. Memory is bounded by ``body_budget_bytes`` all
    the same, but the server's resident size stays near its high-water mark after a burst."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)  # the most glibc takes
    libc.mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024)


def serve(
    store: Store,
    settings: Settings,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    cert: str | None = None,
    key: str | None = None,
    allow_plain_http: bool = False,
    log_level: str = "warning",
    on_ready: Callable[[], None] | None = None,
    return_on_signal: bool = False,
) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn finishes requests in flight, then returns);
    ``on_ready`` is called once the server listens. uvicorn raises the signal again once it has
    stopped (the process then ends as the signal says); with ``return_on_signal`` it returns
    instead, so that a caller with more to stop (``baton dev``'s workers) can stop it."""
    import uvicorn

    from baton.server.app import create_app, release_long_polls
    from baton.server.connections import guarded, raise_file_limit
    from baton.server.state import state_of_app

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            release_long_polls(app)  # else stopping waits for each long poll to run out
            super().handle_exit(sig, frame)
            if return_on_signal:
                self._captured_signals.clear()

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if on_ready is not None and self.started:
                on_ready()

    check_transport(host, cert, key, allow_plain_http)
    # Bodies are parsed and the store is called in worker threads; the event loop, which every
    # request passes through, takes the GIL back from them within 1 ms instead of Python's 5.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    keep_large_blocks()
    app = create_app(store, settings)
    # h11 bounds a request's head (httptools, when installed, takes a 10 MB header); ours adds a
    # deadline for it and a cap on connections (baton.server.connections)
    protocol = guarded(settings.header_timeout_s, raise_file_limit(settings.max_connections))
    config = uvicorn.Config(
        app, host=host, port=port, ssl_certfile=cert, ssl_keyfile=key, log_level=log_level, access_log=False,
        timeout_keep_alive=int(KEEP_ALIVE_S), timeout_graceful_shutdown=5, server_header=False,
        http=protocol, backlog=BACKLOG,
    )  # fmt: skip
    server = Server(config)
    state_of_app(app).metrics.connections = lambda: (len(server.server_state.connections), dict(protocol.counts))
    server.run()
