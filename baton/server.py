"""``baton server``: the event and task communication servers in one process (uvicorn, one
worker process; the store's calls run in its thread pool).

Plain HTTP is for loopback: binding any other address needs a certificate and key (HTTPS), or
an explicit ``allow_plain_http`` for a server behind a TLS-terminating proxy on the same host.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from types import FrameType

from baton.backends.protocol import Store
from baton.errors import UsageError
from baton.settings import Settings

log = logging.getLogger("baton.server")
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8470
KEEP_ALIVE_S = 75.0  # longer than a long poll, so idle workers keep their connections


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

    from baton.api.app import create_app, release_long_polls

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
    app = create_app(store, settings)
    config = uvicorn.Config(
        app, host=host, port=port, ssl_certfile=cert, ssl_keyfile=key, log_level=log_level, access_log=False,
        timeout_keep_alive=int(KEEP_ALIVE_S), timeout_graceful_shutdown=5, server_header=False,
        http="h11",  # bounds a request's head (httptools, when installed, takes a 10 MB header)
    )  # fmt: skip
    Server(config).run()
